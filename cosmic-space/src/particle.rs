//! Particle data: the lifecycle [`Status`], [`Properties`], and the [`Stub`] and [`Details`]
//! the registry keeps and waves carry (SPEC §0, §5.2, §11.2).
//!
//! A particle is born `Pending`, becomes `Init` while its driver (or guest) sets it up, and
//! `Ready` when it answers waves; `Panic` (may recover) and `Fatal` (will not) carry a reason.
//!
//! ```
//! use cosmic_space::Status;
//!
//! let status: Status = "Fatal(wasm trap: unreachable)".parse()?;
//! assert_eq!(status, Status::Fatal("wasm trap: unreachable".into()));
//! assert_eq!("Ready".parse::<Status>()?, Status::Ready);
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kind::Kind;
use crate::point::Point;
use crate::syntax::{Cursor, ParseError, Span};

/// Where a particle is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Status {
    /// Not known (e.g. the registry has no record yet).
    #[default]
    Unknown,
    /// Registered, not yet set up.
    Pending,
    /// Being set up by its driver.
    Init,
    /// Answering waves.
    Ready,
    /// Failed, but may be restarted; with the reason.
    Panic(String),
    /// Failed for good; with the reason.
    Fatal(String),
}

impl Status {
    /// The name without the reason (`"Panic"`).
    pub fn name(&self) -> &'static str {
        match self {
            Status::Unknown => "Unknown",
            Status::Pending => "Pending",
            Status::Init => "Init",
            Status::Ready => "Ready",
            Status::Panic(_) => "Panic",
            Status::Fatal(_) => "Fatal",
        }
    }

    /// Whether the particle answers waves.
    pub fn is_ready(&self) -> bool {
        matches!(self, Status::Ready)
    }

    /// The reason of a `Panic` or `Fatal`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Status::Panic(reason) | Status::Fatal(reason) => Some(reason),
            _ => None,
        }
    }

    /// Parses `Name` or `Name(reason)` at the cursor. In a reason, `\(`, `\)` and `\\` stand
    /// for `(`, `)` and `\`; unescaped parentheses must balance.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Status, ParseError> {
        let at = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
        let status = match name {
            "Unknown" => Status::Unknown,
            "Pending" => Status::Pending,
            "Init" => Status::Init,
            "Ready" => Status::Ready,
            "Panic" => Status::Panic(parse_reason(c)?),
            "Fatal" => Status::Fatal(parse_reason(c)?),
            _ => {
                return Err(c.error_span(
                    Span::new(at, c.pos()),
                    "expected a status: Unknown, Pending, Init, Ready, Panic(reason) or Fatal(reason)",
                ));
            }
        };
        Ok(status)
    }
}

fn parse_reason(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    c.expect("(", "'(' and the reason")?;
    let open = c.pos() - 1;
    let mut reason = String::new();
    let mut depth = 0usize;
    loop {
        let at = c.pos();
        match c.bump() {
            None => return Err(c.error_at(open, "this '(' is never closed")),
            Some('\\') => match c.bump() {
                Some(ch @ ('(' | ')' | '\\')) => reason.push(ch),
                _ => {
                    return Err(c.error_span(
                        Span::new(at, c.pos()),
                        "unknown escape: a reason may escape only '\\(', '\\)' and '\\\\'",
                    ));
                }
            },
            Some(')') if depth == 0 => return Ok(reason),
            Some(ch) => {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                reason.push(ch);
            }
        }
    }
}

/// Whether `reason` can be written as it is: no backslash and balanced parentheses.
fn writes_plain(reason: &str) -> bool {
    let mut depth = 0usize;
    for ch in reason.chars() {
        match ch {
            '\\' => return false,
            '(' => depth += 1,
            ')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}

fn write_reason(f: &mut fmt::Formatter<'_>, reason: &str) -> fmt::Result {
    if writes_plain(reason) {
        return f.write_str(reason);
    }
    for ch in reason.chars() {
        if matches!(ch, '(' | ')' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{ch}")?;
    }
    Ok(())
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(reason) = self.reason() {
            f.write_str("(")?;
            write_reason(f, reason)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl FromStr for Status {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("status", s, Status::parse)
    }
}

/// One property of a particle: its value, and whether it is locked against change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Property {
    /// The value, as text.
    pub value: String,
    /// Whether the value may no longer be changed (e.g. set by the hyperspace at creation).
    pub locked: bool,
}

impl Property {
    /// An unlocked property.
    pub fn new(value: impl Into<String>) -> Property {
        Property {
            value: value.into(),
            locked: false,
        }
    }

    /// A locked property.
    pub fn locked(value: impl Into<String>) -> Property {
        Property {
            value: value.into(),
            locked: true,
        }
    }
}

/// A particle's properties by name (`bind`, `config`, …), in name order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Properties(BTreeMap<String, Property>);

impl Properties {
    /// No properties.
    pub fn new() -> Properties {
        Properties(BTreeMap::new())
    }

    /// The property `name`.
    pub fn get(&self, name: &str) -> Option<&Property> {
        self.0.get(name)
    }

    /// The value of property `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|p| p.value.as_str())
    }

    /// Sets `name` to `property`, returning the old one. Enforcing locks is the registry's
    /// job; this is plain data.
    pub fn insert(&mut self, name: impl Into<String>, property: Property) -> Option<Property> {
        self.0.insert(name.into(), property)
    }

    /// Sets `name` to an unlocked property with `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<Property> {
        self.insert(name, Property::new(value))
    }

    /// Removes property `name`.
    pub fn remove(&mut self, name: &str) -> Option<Property> {
        self.0.remove(name)
    }

    /// Every property, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Property)> + '_ {
        self.0.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, Property>> for Properties {
    fn from(map: BTreeMap<String, Property>) -> Self {
        Properties(map)
    }
}

impl<N: Into<String>> FromIterator<(N, Property)> for Properties {
    fn from_iter<I: IntoIterator<Item = (N, Property)>>(iter: I) -> Self {
        Properties(iter.into_iter().map(|(n, p)| (n.into(), p)).collect())
    }
}

/// The short record of a particle: where it is, what it is, how it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stub {
    /// Its address.
    pub point: Point,
    /// Its type.
    pub kind: Kind,
    /// Its lifecycle status.
    pub status: Status,
}

/// A particle's stub and properties: what `mechtron_init` receives and `get` prints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Details {
    /// Point, kind and status.
    pub stub: Stub,
    /// Its properties.
    pub properties: Properties,
}

impl Details {
    /// The details of `stub` with no properties.
    pub fn new(stub: Stub) -> Details {
        Details {
            stub,
            properties: Properties::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for (text, status) in [
            ("Unknown", Status::Unknown),
            ("Pending", Status::Pending),
            ("Init", Status::Init),
            ("Ready", Status::Ready),
            ("Panic(out of fuel)", Status::Panic("out of fuel".into())),
            ("Fatal()", Status::Fatal(String::new())),
            (
                "Fatal(trap (unreachable) at f(x))",
                Status::Fatal("trap (unreachable) at f(x)".into()),
            ),
            (r"Panic(a \) b)", Status::Panic("a ) b".into())),
            (r"Panic(C:\\dir)", Status::Panic(r"C:\dir".into())),
        ] {
            let parsed: Status = text.parse().unwrap();
            assert_eq!(parsed, status, "{text}");
            assert_eq!(parsed.to_string().parse::<Status>().unwrap(), status);
        }
        assert_eq!(Status::Panic("a ) b".into()).to_string(), r"Panic(a \) b)");
        assert_eq!(Status::Panic("(x".into()).to_string(), r"Panic(\(x)");
        assert_eq!(
            Status::Fatal("f(x) failed".into()).to_string(),
            "Fatal(f(x) failed)"
        );
    }

    #[test]
    fn bad_statuses_point_at_the_problem() {
        let err = "Readyish".parse::<Status>().unwrap_err();
        assert_eq!(err.line_col(), (1, 1));
        let err = "Panic".parse::<Status>().unwrap_err();
        assert!(err.to_string().contains("expected '(' and the reason"));
        let err = "Panic(never closed".parse::<Status>().unwrap_err();
        assert_eq!(err.line_col(), (1, 6));
        assert!(err.to_string().contains("never closed"));
        let err = r"Panic(\n)".parse::<Status>().unwrap_err();
        assert_eq!(err.line_col(), (1, 7));
        assert!("Ready(x)".parse::<Status>().is_err());
        assert!("Panic(x) ".parse::<Status>().is_err());
        assert!("Panic((x)".parse::<Status>().is_err());
    }

    #[test]
    fn status_helpers() {
        assert!(Status::Ready.is_ready());
        assert!(!Status::Init.is_ready());
        assert_eq!(Status::Panic("p".into()).reason(), Some("p"));
        assert_eq!(Status::Pending.reason(), None);
        assert_eq!(Status::default(), Status::Unknown);
    }

    #[test]
    fn properties() {
        let mut props = Properties::new();
        assert_eq!(
            props.set("bind", "localhost:repo:b:1.0.0:/bind/app.bind"),
            None
        );
        props.insert("config", Property::locked("x"));
        assert_eq!(
            props.value("bind"),
            Some("localhost:repo:b:1.0.0:/bind/app.bind")
        );
        assert!(props.get("config").unwrap().locked);
        assert_eq!(
            props.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["bind", "config"]
        );
        assert_eq!(props.len(), 2);
        assert_eq!(props.remove("bind").map(|p| p.value.len()), Some(37));
        assert!(!props.is_empty());
        let collected: Properties = [("a", Property::new("1"))].into_iter().collect();
        assert_eq!(collected.value("a"), Some("1"));
    }
}
