//! Selectors: patterns over points and kinds (SPEC §4), used by `select`, grants and drivers.
//!
//! ```
//! use cosmic_space::Selector;
//!
//! let selector: Selector = "localhost:**<Mechtron>".parse()?;
//! assert_eq!(selector.to_string(), "localhost:**<Mechtron>");
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::kind::BaseKind;
use crate::point::{parse_domain, parse_version};
use crate::syntax::{Cursor, ParseError, Span, is_camel};

/// `*` or one exact value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Pattern<T> {
    /// `*`: anything.
    Any,
    /// Exactly this.
    Exact(T),
}

impl<T: PartialEq> Pattern<T> {
    /// Whether `value` matches.
    pub fn matches(&self, value: &T) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(exact) => exact == value,
        }
    }
}

impl<T: fmt::Display> fmt::Display for Pattern<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Any => f.write_str("*"),
            Pattern::Exact(value) => value.fmt(f),
        }
    }
}

/// A pattern over versions: `*`, an exact version, or a requirement in parentheses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VersionPattern {
    /// `*`: any version.
    Any,
    /// `1.0.0`: exactly this version.
    Exact(Version),
    /// `(^1.0.0)`, `(>=2, <3)`: any version meeting the requirement.
    Req(VersionReq),
}

impl VersionPattern {
    /// Whether `version` matches.
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            VersionPattern::Any => true,
            VersionPattern::Exact(exact) => exact == version,
            VersionPattern::Req(req) => req.matches(version),
        }
    }

    fn parse(c: &mut Cursor<'_>) -> Result<VersionPattern, ParseError> {
        if c.eat_char('*') {
            Ok(VersionPattern::Any)
        } else if c.peek() == Some('(') {
            Ok(VersionPattern::Req(parse_version_req(c)?))
        } else {
            Ok(VersionPattern::Exact(parse_version(c)?))
        }
    }
}

impl fmt::Display for VersionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionPattern::Any => f.write_str("*"),
            VersionPattern::Exact(v) => v.fmt(f),
            VersionPattern::Req(req) => write!(f, "({req})"),
        }
    }
}

/// `( requirement )`, e.g. `(^1.0.0)` or `(>=2, <3)`.
fn parse_version_req(c: &mut Cursor<'_>) -> Result<VersionReq, ParseError> {
    let start = c.pos();
    c.expect("(", "'(' to begin a version requirement")?;
    let text = c.take_while(|ch| ch != ')' && ch != '\n');
    if !c.eat_char(')') {
        return Err(c.error("expected ')' to close the version requirement"));
    }
    VersionReq::parse(text.trim()).map_err(|e| {
        c.error_span(
            Span::new(start, c.pos()),
            format!("'{}' is not a version requirement: {e}", text.trim()),
        )
    })
}

/// A pattern over specifics: `provider:vendor:product:variant:version`, each part `*` or exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpecificSelector {
    /// The provider (a domain).
    pub provider: Pattern<String>,
    /// The vendor (a domain).
    pub vendor: Pattern<String>,
    /// The product.
    pub product: Pattern<String>,
    /// The variant.
    pub variant: Pattern<String>,
    /// The version.
    pub version: VersionPattern,
}

impl SpecificSelector {
    fn parse(c: &mut Cursor<'_>) -> Result<SpecificSelector, ParseError> {
        let provider = word_pattern(c, "a provider or '*'")?;
        c.expect(":", "':' after the provider")?;
        let vendor = word_pattern(c, "a vendor or '*'")?;
        c.expect(":", "':' after the vendor")?;
        let product = word_pattern(c, "a product or '*'")?;
        c.expect(":", "':' after the product")?;
        let variant = word_pattern(c, "a variant or '*'")?;
        c.expect(":", "':' after the variant")?;
        let version = VersionPattern::parse(c)?;
        Ok(SpecificSelector {
            provider,
            vendor,
            product,
            variant,
            version,
        })
    }
}

fn word_pattern(c: &mut Cursor<'_>, expected: &str) -> Result<Pattern<String>, ParseError> {
    if c.eat_char('*') {
        Ok(Pattern::Any)
    } else {
        parse_domain(c, expected).map(Pattern::Exact)
    }
}

impl fmt::Display for SpecificSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}:{}",
            self.provider, self.vendor, self.product, self.variant, self.version
        )
    }
}

/// A pattern over kinds: `*`, `Mechtron`, `Artifact<Wasm>`, `Database<Relational<…>>`.
///
/// Written inside `<…>` after a selector hop; on its own (as parsed by `FromStr`) without the
/// outer brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KindSelector {
    /// The base kind.
    pub base: Pattern<BaseKind>,
    /// The sub-kind's name; `None` when not written (any sub-kind).
    pub sub: Option<Pattern<String>>,
    /// The specific; `None` when not written (any specific).
    pub specific: Option<SpecificSelector>,
}

impl KindSelector {
    /// `*`: every kind.
    pub fn any() -> KindSelector {
        KindSelector {
            base: Pattern::Any,
            sub: None,
            specific: None,
        }
    }

    /// Selects exactly `base` (with any sub-kind).
    pub fn base(base: BaseKind) -> KindSelector {
        KindSelector {
            base: Pattern::Exact(base),
            sub: None,
            specific: None,
        }
    }

    /// True for `*` (nothing written).
    pub fn is_any(&self) -> bool {
        self.base == Pattern::Any && self.sub.is_none() && self.specific.is_none()
    }

    /// Parses a kind selector (without outer brackets) at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<KindSelector, ParseError> {
        let base = if c.eat_char('*') {
            Pattern::Any
        } else {
            let at = c.pos();
            let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
            Pattern::Exact(BaseKind::from_name(name).ok_or_else(|| {
                let message = if name.is_empty() {
                    "expected a kind or '*'".to_string()
                } else {
                    format!("unknown kind '{name}'")
                };
                c.error_span(Span::new(at, c.pos()), message)
            })?)
        };
        let mut selector = KindSelector {
            base,
            sub: None,
            specific: None,
        };
        if !c.eat_char('<') {
            return Ok(selector);
        }
        let sub = if c.eat_char('*') {
            Pattern::Any
        } else {
            let at = c.pos();
            let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
            let valid = match &selector.base {
                Pattern::Exact(base) => base.sub_kind_names().contains(&name),
                Pattern::Any => is_camel(name),
            };
            if !valid {
                let message = match &selector.base {
                    Pattern::Exact(base) if base.sub_kind_names().is_empty() => {
                        format!("{base} has no sub-kinds")
                    }
                    Pattern::Exact(base) => format!(
                        "unknown sub-kind '{name}' of {base}: expected one of {} or '*'",
                        base.sub_kind_names().join(", ")
                    ),
                    Pattern::Any => "expected a sub-kind or '*'".to_string(),
                };
                return Err(c.error_span(Span::new(at, c.pos()), message));
            }
            Pattern::Exact(name.to_string())
        };
        selector.sub = Some(sub);
        if c.eat_char('<') {
            selector.specific = Some(SpecificSelector::parse(c)?);
            c.expect(">", "'>' to close the specific selector")?;
        }
        c.expect(">", "'>' to close the sub-kind")?;
        Ok(selector)
    }
}

impl Default for KindSelector {
    fn default() -> Self {
        KindSelector::any()
    }
}

impl fmt::Display for KindSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base)?;
        if let Some(sub) = &self.sub {
            write!(f, "<{sub}")?;
            if let Some(specific) = &self.specific {
                write!(f, "<{specific}>")?;
            }
            f.write_str(">")?;
        }
        Ok(())
    }
}

impl FromStr for KindSelector {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("kind selector", s, KindSelector::parse)
    }
}

/// What one hop of a selector matches in one segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SegmentPattern {
    /// `*`: exactly one segment.
    Any,
    /// `**`: zero or more segments.
    Recursive,
    /// A segment with exactly this text (a space, base, directory or file name).
    Exact(String),
    /// An exact version.
    Version(Version),
    /// `(req)`: a version meeting the requirement.
    VersionReq(VersionReq),
}

impl fmt::Display for SegmentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentPattern::Any => f.write_str("*"),
            SegmentPattern::Recursive => f.write_str("**"),
            SegmentPattern::Exact(s) => f.write_str(s),
            SegmentPattern::Version(v) => v.fmt(f),
            SegmentPattern::VersionReq(req) => write!(f, "({req})"),
        }
    }
}

/// One hop of a selector: a segment pattern, a kind selector and whether it is inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hop {
    /// What segment(s) the hop matches.
    pub segment: SegmentPattern,
    /// What kind the particle at this hop must be (`*` when not written).
    pub kind: KindSelector,
    /// `+`: the hop also matches the parent it hangs below (so `localhost+:**` matches
    /// `localhost` itself as well as everything under it).
    pub inclusive: bool,
}

impl Hop {
    fn parse(c: &mut Cursor<'_>, in_fs: bool) -> Result<Hop, ParseError> {
        let segment = if c.eat("**") {
            SegmentPattern::Recursive
        } else if c.eat_char('*') {
            SegmentPattern::Any
        } else if c.peek() == Some('(') {
            SegmentPattern::VersionReq(parse_version_req(c)?)
        } else if in_fs {
            let at = c.pos();
            let name =
                c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
            if name.is_empty() {
                return Err(c.error("expected a file or directory name, '*' or '**'"));
            }
            if name == "." || name == ".." {
                return Err(c.error_span(
                    Span::new(at, c.pos()),
                    "'.' and '..' are not allowed in a file-system path",
                ));
            }
            SegmentPattern::Exact(name.to_string())
        } else if c.peek().is_some_and(|ch| ch.is_ascii_digit()) && starts_with_version(c) {
            SegmentPattern::Version(parse_version(c)?)
        } else if c
            .peek()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        {
            let text = parse_domain(c, "a segment")?;
            if c.peek()
                .is_some_and(|ch| ch.is_ascii_uppercase() || ch == '_')
            {
                return Err(c.error("expected a skewer-case segment ([a-z][a-z0-9-]*)"));
            }
            SegmentPattern::Exact(text)
        } else {
            return Err(c.error("expected a segment, '*', '**' or a (version requirement)"));
        };
        let kind = if c.eat_char('<') {
            let kind = KindSelector::parse(c)?;
            c.expect(">", "'>' to close the kind selector")?;
            kind
        } else {
            KindSelector::any()
        };
        let inclusive = c.eat_char('+');
        Ok(Hop {
            segment,
            kind,
            inclusive,
        })
    }
}

/// Whether the digits at the cursor begin a whole version (`1.2.3…`) rather than a domain.
fn starts_with_version(c: &Cursor<'_>) -> bool {
    let text: String = c
        .rest()
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '+'))
        .collect();
    Version::parse(&text).is_ok()
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.segment)?;
        if !self.kind.is_any() {
            write!(f, "<{}>", self.kind)?;
        }
        if self.inclusive {
            f.write_str("+")?;
        }
        Ok(())
    }
}

/// A pattern over points and their kinds (SPEC §4), e.g. `localhost:**<Mechtron>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Selector {
    /// The hops before any `:/`, outermost first; never empty.
    pub hops: Vec<Hop>,
    /// The hops after `:/`, if the selector reaches into a file system.
    pub fs: Option<Vec<Hop>>,
}

impl Selector {
    /// Parses a selector at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Selector, ParseError> {
        let mut hops = vec![Hop::parse(c, false)?];
        let mut fs = None;
        while c.peek() == Some(':') && c.peek2() != Some(':') {
            c.bump();
            if c.eat_char('/') {
                let mut fs_hops = Vec::new();
                if c.peek().is_some_and(|ch| {
                    ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '*' | '(')
                }) {
                    fs_hops.push(Hop::parse(c, true)?);
                    while c.eat_char('/') {
                        fs_hops.push(Hop::parse(c, true)?);
                    }
                }
                fs = Some(fs_hops);
                break;
            }
            hops.push(Hop::parse(c, false)?);
        }
        Ok(Selector { hops, fs })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, hop) in self.hops.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{hop}")?;
        }
        if let Some(fs) = &self.fs {
            f.write_str(":/")?;
            for (i, hop) in fs.iter().enumerate() {
                if i > 0 {
                    f.write_str("/")?;
                }
                write!(f, "{hop}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("selector", s, Selector::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_round_trip() {
        for s in [
            "localhost:**",
            "**<Mechtron>",
            "*:app<Mechtron>",
            "localhost:*<User>",
            "repo:hello:(^1.0.0)",
            "repo:hello:(>=2, <3)",
            "localhost:repo:site:1.0.0:/html/**",
            "localhost+:**",
            "localhost:**:scott",
            "localhost:users:**<User>",
            "**<Star<Fold>>",
            "**<Database<Relational<starlane.io:postgres.org:postgres:*:(^15)>>>",
            "my-domain.com:apps:*",
            "repo:hello:1.0.0:/",
            "**<*<Wasm>>",
        ] {
            let selector: Selector = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(selector.to_string(), s);
        }
    }

    #[test]
    fn bad_selectors_are_refused() {
        for s in [
            "",
            "localhost:",
            "localhost:Base",
            "**<Spaceship>",
            "**<Artifact<Jpeg>>",
            "**<Space<Wasm>>",
            "repo:(^^1)",
            "repo:hello:1.0.0:/../x",
            "**<Mechtron",
        ] {
            assert!(s.parse::<Selector>().is_err(), "{s}");
        }
    }
}
