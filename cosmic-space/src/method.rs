//! Methods: what a directed wave asks for (SPEC §5.1), and patterns over them (SPEC §7).
//!
//! ```
//! use cosmic_space::{Method, MethodPattern};
//!
//! let get: Method = "Http<Get>".parse()?;
//! assert!("Http<*>".parse::<MethodPattern>()?.matches(&get));
//! assert!(!"Ext<Hello>".parse::<MethodPattern>()?.matches(&get));
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::syntax::{Cursor, ParseError, Span, is_camel, word_enum};

/// The family a method belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MethodKind {
    /// Infrastructure methods the hyperspace uses between its own parts.
    Hyp,
    /// Commands to a particle: read, update, run a command, log …
    Cmd,
    /// HTTP methods, for waves that came from (or go to) the web.
    Http,
    /// Application-defined methods.
    Ext,
}

impl MethodKind {
    /// The name as written (`Hyp`, `Cmd`, `Http`, `Ext`).
    pub fn name(self) -> &'static str {
        match self {
            MethodKind::Hyp => "Hyp",
            MethodKind::Cmd => "Cmd",
            MethodKind::Http => "Http",
            MethodKind::Ext => "Ext",
        }
    }

    fn from_name(name: &str) -> Option<MethodKind> {
        match name {
            "Hyp" => Some(MethodKind::Hyp),
            "Cmd" => Some(MethodKind::Cmd),
            "Http" => Some(MethodKind::Http),
            "Ext" => Some(MethodKind::Ext),
            _ => None,
        }
    }

    /// The names a method of this kind may have; `None` for `Ext`, which takes any CamelCase
    /// name.
    pub fn names(self) -> Option<&'static [&'static str]> {
        match self {
            MethodKind::Hyp => Some(HypMethod::NAMES),
            MethodKind::Cmd => Some(CmdMethod::NAMES),
            MethodKind::Http => Some(HttpMethod::NAMES),
            MethodKind::Ext => None,
        }
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

word_enum!(
    /// Infrastructure methods.
    pub enum HypMethod {
        /// Start a particle after it is created.
        Init,
        /// Place a particle on a star.
        Assign,
        /// Make sure a particle is ready to receive waves.
        Provision,
        /// Carry a wave between stars.
        Transport,
        /// Host a particle's guest.
        Host,
        /// Find which star hosts a point.
        Search,
        /// Tell a star a particle was created.
        Create,
        /// Tell a star a particle was deleted.
        Delete,
        /// Ask whether a particle is alive.
        Ping,
    }
);

word_enum!(
    /// Command methods.
    pub enum CmdMethod {
        /// Initialise.
        Init,
        /// Read the particle's content.
        Read,
        /// Replace the particle's content.
        Update,
        /// Run a parsed command.
        Command,
        /// Run a command given as text.
        RawCommand,
        /// Write a log line.
        Log,
        /// Answer at once (a liveness check).
        Bounce,
        /// Open a CLI session.
        Session,
        /// A particle's lifecycle event, as its subscribers receive it (SPEC §18).
        Event,
    }
);

word_enum!(
    /// HTTP methods.
    pub enum HttpMethod {
        /// GET
        Get,
        /// POST
        Post,
        /// PUT
        Put,
        /// DELETE
        Delete,
        /// PATCH
        Patch,
        /// HEAD
        Head,
        /// OPTIONS
        Options,
        /// CONNECT
        Connect,
        /// TRACE
        Trace,
    }
);

/// The method of a directed wave: `Hyp<…>`, `Cmd<…>`, `Http<…>` or `Ext<Name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    /// An infrastructure method.
    Hyp(HypMethod),
    /// A command method.
    Cmd(CmdMethod),
    /// An HTTP method.
    Http(HttpMethod),
    /// An application-defined method (CamelCase).
    Ext(String),
}

impl Method {
    /// `Ext<name>`, checking that `name` is CamelCase.
    pub fn ext(name: &str) -> Result<Method, ParseError> {
        if is_camel(name) {
            Ok(Method::Ext(name.to_string()))
        } else {
            Err(ParseError::new(
                "method",
                name,
                Span::at(0),
                "an Ext method name must be CamelCase ([A-Z][A-Za-z0-9]*)",
            ))
        }
    }

    /// The family of the method.
    pub fn kind(&self) -> MethodKind {
        match self {
            Method::Hyp(_) => MethodKind::Hyp,
            Method::Cmd(_) => MethodKind::Cmd,
            Method::Http(_) => MethodKind::Http,
            Method::Ext(_) => MethodKind::Ext,
        }
    }

    /// The name inside the `<…>`.
    pub fn name(&self) -> &str {
        match self {
            Method::Hyp(m) => m.name(),
            Method::Cmd(m) => m.name(),
            Method::Http(m) => m.name(),
            Method::Ext(name) => name,
        }
    }

    /// Parses a method at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Method, ParseError> {
        let kind = parse_method_kind(c)?;
        c.expect("<", "'<' and a method name")?;
        let at = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
        let method = method_named(kind, name)
            .ok_or_else(|| bad_name(c, kind, name, Span::new(at, c.pos())))?;
        c.expect(">", "'>' to close the method")?;
        Ok(method)
    }
}

fn parse_method_kind(c: &mut Cursor<'_>) -> Result<MethodKind, ParseError> {
    let at = c.pos();
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
    MethodKind::from_name(name).ok_or_else(|| {
        c.error_span(
            Span::new(at, c.pos()),
            "expected a method kind: Hyp, Cmd, Http or Ext",
        )
    })
}

fn method_named(kind: MethodKind, name: &str) -> Option<Method> {
    match kind {
        MethodKind::Hyp => HypMethod::from_name(name).map(Method::Hyp),
        MethodKind::Cmd => CmdMethod::from_name(name).map(Method::Cmd),
        MethodKind::Http => HttpMethod::from_name(name).map(Method::Http),
        MethodKind::Ext => is_camel(name).then(|| Method::Ext(name.to_string())),
    }
}

fn bad_name(c: &Cursor<'_>, kind: MethodKind, name: &str, span: Span) -> ParseError {
    let message = match kind.names() {
        Some(names) => format!(
            "unknown {kind} method '{name}': expected one of {}",
            names.join(", ")
        ),
        None => "expected an Ext method name in CamelCase ([A-Z][A-Za-z0-9]*)".to_string(),
    };
    c.error_span(span, message)
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<{}>", self.kind(), self.name())
    }
}

impl FromStr for Method {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("method", s, Method::parse)
    }
}

/// A pattern over methods: `*`, `Http<*>`, `Ext<Hello>`, `Cmd<Read>` (bind route selectors).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MethodPattern {
    /// `*`: every method.
    Any,
    /// `Kind<*>`: every method of one family.
    Kind(MethodKind),
    /// One exact method.
    Exact(Method),
}

impl MethodPattern {
    /// Whether `method` matches the pattern.
    pub fn matches(&self, method: &Method) -> bool {
        match self {
            MethodPattern::Any => true,
            MethodPattern::Kind(kind) => method.kind() == *kind,
            MethodPattern::Exact(exact) => exact == method,
        }
    }

    /// Parses a method pattern at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<MethodPattern, ParseError> {
        if c.eat_char('*') {
            return Ok(MethodPattern::Any);
        }
        let kind = parse_method_kind(c)?;
        c.expect("<", "'<' and a method name or '*'")?;
        let pattern = if c.eat_char('*') {
            MethodPattern::Kind(kind)
        } else {
            let at = c.pos();
            let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
            MethodPattern::Exact(
                method_named(kind, name)
                    .ok_or_else(|| bad_name(c, kind, name, Span::new(at, c.pos())))?,
            )
        };
        c.expect(">", "'>' to close the method")?;
        Ok(pattern)
    }
}

impl fmt::Display for MethodPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodPattern::Any => f.write_str("*"),
            MethodPattern::Kind(kind) => write!(f, "{kind}<*>"),
            MethodPattern::Exact(method) => write!(f, "{method}"),
        }
    }
}

impl FromStr for MethodPattern {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("method pattern", s, MethodPattern::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip() {
        for s in [
            "Hyp<Assign>",
            "Cmd<Read>",
            "Http<Get>",
            "Ext<Hello>",
            "Ext<SayHi2>",
        ] {
            assert_eq!(s.parse::<Method>().unwrap().to_string(), s);
        }
        for s in ["*", "Http<*>", "Ext<Hello>"] {
            assert_eq!(s.parse::<MethodPattern>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_methods_are_refused() {
        for s in [
            "Http<Fetch>",
            "Ext<hello>",
            "Foo<Bar>",
            "Http<Get",
            "Cmd<>",
            "Ext<*>",
        ] {
            assert!(s.parse::<Method>().is_err(), "{s}");
        }
    }

    #[test]
    fn patterns_match_by_kind_and_name() {
        let get: Method = "Http<Get>".parse().unwrap();
        assert!(MethodPattern::Any.matches(&get));
        assert!(MethodPattern::Kind(MethodKind::Http).matches(&get));
        assert!(!MethodPattern::Kind(MethodKind::Ext).matches(&get));
        assert!(!"Http<Post>".parse::<MethodPattern>().unwrap().matches(&get));
    }
}
