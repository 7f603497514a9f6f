//! Selectors: patterns over points and kinds (SPEC §4), used by `select`, grants and drivers.
//!
//! A [`Selector`] is a list of hops matched against the segments of a point; a
//! [`KindSelector`] on a hop constrains the kind of the particle at that segment, which is why
//! full matching takes a [`PointHierarchy`] (a point plus the kind of every segment).
//! [`Selector::matches_point`] matches a bare point: any hop that names a kind then fails.
//!
//! ```
//! use cosmic_space::{Kind, Point, PointHierarchy, Selector};
//!
//! let selector: Selector = "localhost:**<Mechtron>".parse()?;
//! assert_eq!(selector.to_string(), "localhost:**<Mechtron>");
//!
//! let point: Point = "localhost:app:echo".parse()?;
//! let hierarchy = PointHierarchy::new(point.clone(), vec![Kind::Space, Kind::App, Kind::Mechtron])?;
//! assert!(selector.matches(&hierarchy));
//! assert!(!selector.matches_point(&point)); // no kinds: `<Mechtron>` cannot be checked
//! assert!("localhost+:**".parse::<Selector>()?.matches_point(&"localhost".parse()?));
//! # Ok::<(), cosmic_space::Error>(())
//! ```
//!
//! # Matching rules
//!
//! - `*` matches exactly one segment. `**` matches zero or more segments between other hops,
//!   but a **trailing** `**` (the selector's last hop) matches one or more: `localhost:**`
//!   selects what lies below `localhost`, not `localhost` itself.
//! - `+` after a hop lets the point end right after that hop (the remaining hops then match
//!   nothing): `localhost+:**` matches `localhost` and everything below it. On the last hop it
//!   changes nothing.
//! - A kind selector applies to the segment its hop consumed; on `**` to the last segment it
//!   consumed. A `**<X>` that consumed no segment matches only if `X` is `*`.
//! - An exact name matches a space or base segment with that text; a version matches a version
//!   segment (exactly, or by requirement `(^1.0.0)`).
//! - Without a file-system part (`:/`) the wildcards `*` and `**` also cross into file-system
//!   segments (`:/` itself, directories and files): `localhost:base:**` covers every file under
//!   `localhost:base`. Exact names there only match spaces and bases; to name a file, write the
//!   `:/` part.
//! - With a file-system part, the hops before `:/` must match exactly the segments before the
//!   point's `:/`, and the hops after it the directories and files after it; an exact name
//!   there matches a directory or a file of that name. A bare `:/` matches the file-system root
//!   itself.
//! - Selectors carry no route: they match only points whose route is [`RouteSeg::This`].
//! - `ROOT` is matched only where a `+` or a `**` in the middle lets a selector end before
//!   its first segment (`**+:x` matches every point, `ROOT` included).
//!
//! # Grammar details
//!
//! The first hop is a space (a domain), never a version; later hops are bases (skewer case,
//! as in points) or domains (so `**:my-domain.com` can name a space). A version hop may carry
//! `+` (`1.0.0+`, or `1.0.0+build+`: a version never ends in `+`). After `:/`, a trailing
//! `/` (as in a directory's point, `…:/html/`) is accepted and dropped, so every point of
//! this cosmos but `ROOT`, printed, is a selector that matches it.
//!
//! Matching is a dynamic programme over (hop, segment) pairs: `O(hops × segments)` whatever
//! the number of `**`, so hostile selectors cannot make it blow up.

use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::kind::{BaseKind, Kind, Specific};
use crate::point::{Point, PointSeg, RouteSeg, parse_domain, parse_version};
use crate::syntax::{Cursor, ParseError, Span, is_camel, is_skewer};

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
    /// Whether `specific` matches: every part equal or `*`, the version by its pattern.
    pub fn matches(&self, specific: &Specific) -> bool {
        self.provider.matches(&specific.provider)
            && self.vendor.matches(&specific.vendor)
            && self.product.matches(&specific.product)
            && self.variant.matches(&specific.variant)
            && self.version.matches(&specific.version)
    }

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

    /// Whether `kind` matches: its base, its sub-kind's name and its specific.
    ///
    /// An unwritten part matches anything. A written sub-kind `*` matches any sub-kind and
    /// also a kind without one (`UserBase<*>` matches a plain `UserBase`). A written specific
    /// selector needs the kind to have a specific that matches it.
    pub fn matches(&self, kind: &Kind) -> bool {
        if !self.base.matches(&kind.base()) {
            return false;
        }
        match &self.sub {
            None | Some(Pattern::Any) => {}
            Some(Pattern::Exact(name)) => {
                if kind.sub_name() != Some(name.as_str()) {
                    return false;
                }
            }
        }
        match &self.specific {
            None => true,
            Some(selector) => kind.specific().is_some_and(|s| selector.matches(s)),
        }
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
    /// Parses a hop; `position` says whether it is the first hop (a space: never a version),
    /// a later main hop, or a file-system hop.
    fn parse(c: &mut Cursor<'_>, position: HopPosition) -> Result<Hop, ParseError> {
        let in_fs = position == HopPosition::Fs;
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
        } else if position == HopPosition::Later
            && c.peek().is_some_and(|ch| ch.is_ascii_digit())
            && starts_with_version(c)
        {
            SegmentPattern::Version(parse_hop_version(c)?)
        } else if position == HopPosition::First
            && c.peek()
                .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        {
            let text = parse_domain(c, "a space")?;
            if c.peek()
                .is_some_and(|ch| ch.is_ascii_uppercase() || ch == '_')
            {
                return Err(c.error("expected a space: a domain of lower-case labels"));
            }
            SegmentPattern::Exact(text)
        } else if c
            .peek()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        {
            // A base (skewer case, as in points) or, for `**:my-domain.com`, a space.
            let at = c.pos();
            let text = c.take_while(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '-' | '.')
            });
            if !is_skewer(text) && !is_domain(text) {
                return Err(c.error_span(
                    Span::new(at, c.pos()),
                    format!(
                        "'{text}' is not a segment: expected a skewer-case base \
                         ([a-z][a-z0-9-]*) or a domain"
                    ),
                ));
            }
            let text = text.to_string();
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

/// `label { "." label }`, `label := [a-z0-9][a-z0-9-]*` without a trailing `-`.
fn is_domain(text: &str) -> bool {
    text.split('.').all(|label| {
        label
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && !label.ends_with('-')
            && label
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    })
}

/// Where a hop stands in a selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HopPosition {
    /// The first hop: a space, never a version.
    First,
    /// A later hop before any `:/`.
    Later,
    /// A hop after `:/`.
    Fs,
}

/// The version text at the cursor: semver characters, less one trailing `+` (a version never
/// ends in `+`, so a trailing one is the hop's inclusive marker: `1.0.0+`).
fn version_text<'a>(c: &Cursor<'a>) -> &'a str {
    let rest = c.rest();
    let len = rest
        .find(|ch: char| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '+')))
        .unwrap_or(rest.len());
    let text = rest.get(..len).unwrap_or_default();
    text.strip_suffix('+').unwrap_or(text)
}

/// Whether the digits at the cursor begin a whole version (`1.2.3…`) rather than a domain.
fn starts_with_version(c: &Cursor<'_>) -> bool {
    Version::parse(version_text(c)).is_ok()
}

/// A version hop (see [`version_text`]).
fn parse_hop_version(c: &mut Cursor<'_>) -> Result<Version, ParseError> {
    let at = c.pos();
    let text = version_text(c);
    let version = Version::parse(text).map_err(|e| {
        c.error_span(
            Span::new(at, at + text.len()),
            format!("expected a version (MAJOR.MINOR.PATCH): '{text}' is not one: {e}"),
        )
    })?;
    c.reset(at + text.len());
    Ok(version)
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
        let mut hops = vec![Hop::parse(c, HopPosition::First)?];
        let mut fs = None;
        let begins_fs_hop = |c: &Cursor<'_>| {
            c.peek().is_some_and(|ch| {
                ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '*' | '(')
            })
        };
        while c.peek() == Some(':') && c.peek2() != Some(':') {
            c.bump();
            if c.eat_char('/') {
                // `/` separates fs hops; a trailing one (as in a directory's point,
                // `…:/html/`) is accepted and means nothing.
                let mut fs_hops = Vec::new();
                if begins_fs_hop(c) {
                    fs_hops.push(Hop::parse(c, HopPosition::Fs)?);
                    while c.eat_char('/') && begins_fs_hop(c) {
                        fs_hops.push(Hop::parse(c, HopPosition::Fs)?);
                    }
                    if c.peek() == Some('/') {
                        return Err(c.error("expected a file or directory name, '*' or '**'"));
                    }
                }
                fs = Some(fs_hops);
                break;
            }
            hops.push(Hop::parse(c, HopPosition::Later)?);
        }
        Ok(Selector { hops, fs })
    }
}

impl Selector {
    /// Whether the selector matches `hierarchy`: its point and, for hops that name a kind, the
    /// kinds of the segments (see the module documentation for the rules).
    pub fn matches(&self, hierarchy: &PointHierarchy) -> bool {
        self.matches_parts(
            hierarchy.point.route(),
            hierarchy.point.segments(),
            Some(&hierarchy.kinds),
        )
    }

    /// Whether the selector matches `point` when kinds are unknown: a hop whose kind selector
    /// is not `*` then never matches (a `**<X>` that consumes no segment still may not).
    pub fn matches_point(&self, point: &Point) -> bool {
        self.matches_parts(point.route(), point.segments(), None)
    }

    /// Whether the selector matches `point` whose segments have the kinds `kinds` (outermost
    /// first, one per segment): [`Selector::matches`] without building a [`PointHierarchy`],
    /// for a registry that keeps the kinds of the ancestors at hand while it scans. False when
    /// the number of kinds differs from the number of segments.
    pub fn matches_kinds(&self, point: &Point, kinds: &[Kind]) -> bool {
        kinds.len() == point.segments().len()
            && self.matches_parts(point.route(), point.segments(), Some(kinds))
    }

    /// Whether the selector matches the ancestor of `hierarchy` with `depth` segments; used to
    /// check a selector against every ancestor without building each one.
    pub(crate) fn matches_depth(&self, hierarchy: &PointHierarchy, depth: usize) -> bool {
        let depth = depth.min(hierarchy.kinds.len());
        let segments = hierarchy.point.segments().get(..depth).unwrap_or_default();
        let kinds = hierarchy.kinds.get(..depth).unwrap_or_default();
        self.matches_parts(hierarchy.point.route(), segments, Some(kinds))
    }

    fn matches_parts(
        &self,
        route: &RouteSeg,
        segments: &[PointSeg],
        kinds: Option<&[Kind]>,
    ) -> bool {
        if *route != RouteSeg::This {
            return false;
        }
        let Some(fs_hops) = &self.fs else {
            return Matcher {
                hops: &self.hops,
                segments,
                kinds,
                in_fs: false,
                accept_all: true,
                accept_inclusive_end: true,
                ends_selector: true,
            }
            .run();
        };
        match segments.iter().position(|s| *s == PointSeg::FsRoot) {
            // No file system: only an inclusive main hop lets the point end before `:/`.
            None => Matcher {
                hops: &self.hops,
                segments,
                kinds,
                in_fs: false,
                accept_all: false,
                accept_inclusive_end: true,
                ends_selector: false,
            }
            .run(),
            Some(at) => {
                let (before, after) = segments.split_at(at);
                let after = after.get(1..).unwrap_or_default();
                let (kinds_before, kinds_after) = match kinds {
                    Some(kinds) => {
                        let (b, a) = kinds.split_at(at.min(kinds.len()));
                        (Some(b), Some(a.get(1..).unwrap_or_default()))
                    }
                    None => (None, None),
                };
                Matcher {
                    hops: &self.hops,
                    segments: before,
                    kinds: kinds_before,
                    in_fs: false,
                    accept_all: true,
                    accept_inclusive_end: false,
                    ends_selector: false,
                }
                .run()
                    && Matcher {
                        hops: fs_hops,
                        segments: after,
                        kinds: kinds_after,
                        in_fs: true,
                        accept_all: true,
                        accept_inclusive_end: true,
                        ends_selector: true,
                    }
                    .run()
            }
        }
    }

    /// The longest leading run of exact hops as a point: every point the selector matches lies
    /// at or below it, so a registry can narrow a scan to that subtree. `None` when the first
    /// hop is not an exact space (e.g. `**` or `*`).
    ///
    /// The run stops after an inclusive hop (`a+:b` may match `a` itself), and inside a file
    /// system an exact name becomes a directory only when another hop follows it.
    pub fn literal_prefix(&self) -> Option<Point> {
        let mut hops = self.hops.iter();
        let first = hops.next()?;
        let SegmentPattern::Exact(space) = &first.segment else {
            return None;
        };
        let mut point = Point::space(space).ok()?;
        if first.inclusive {
            return Some(point);
        }
        for hop in hops {
            let segment = match &hop.segment {
                SegmentPattern::Exact(name) => PointSeg::Base(name.clone()),
                SegmentPattern::Version(version) => PointSeg::Version(version.clone()),
                _ => return Some(point),
            };
            match point.push(segment) {
                Ok(next) => point = next,
                Err(_) => return Some(point),
            }
            if hop.inclusive {
                return Some(point);
            }
        }
        let Some(fs) = &self.fs else {
            return Some(point);
        };
        match point.push(PointSeg::FsRoot) {
            Ok(next) => point = next,
            Err(_) => return Some(point),
        }
        // The last fs hop may name a file; only the ones before it are surely directories.
        for hop in fs.iter().take(fs.len().saturating_sub(1)) {
            let SegmentPattern::Exact(name) = &hop.segment else {
                return Some(point);
            };
            match point.push(PointSeg::Dir(name.clone())) {
                Ok(next) => point = next,
                Err(_) => return Some(point),
            }
            if hop.inclusive {
                return Some(point);
            }
        }
        Some(point)
    }
}

/// One run of hops against one run of segments (the whole point, or one side of `:/`).
struct Matcher<'a> {
    hops: &'a [Hop],
    segments: &'a [PointSeg],
    /// The segments' kinds; `None` when unknown (only `*` kind selectors match).
    kinds: Option<&'a [Kind]>,
    /// Whether these are file-system hops (exact names match directories and files).
    in_fs: bool,
    /// Whether matching every hop against every segment counts (false when the selector
    /// still expects a `:/` the point does not have).
    accept_all: bool,
    /// Whether a point may end right after an inclusive (`+`) hop (false when the point goes
    /// on past these segments).
    accept_inclusive_end: bool,
    /// Whether the last hop ends the selector (false for the hops before `:/`): a `**` there
    /// is trailing and must consume at least one segment.
    ends_selector: bool,
}

impl Matcher<'_> {
    /// Bottom-up over `table[i][j]` = "hops `i..` match segments `j..`": `O(hops × segments)`,
    /// no recursion, so neither many `**` nor long points can blow it up.
    fn run(&self) -> bool {
        let n = self.hops.len();
        let m = self.segments.len();
        let width = m + 1;
        // Row `i + 1` and row `i` of the table; rows are computed from the last hop up. They
        // live on the stack for points of fewer than `INLINE` segments (every ordinary
        // point), so matching allocates nothing: a registry's select runs this per candidate.
        const INLINE: usize = 32;
        let (mut next_inline, mut row_inline) = ([false; INLINE], [false; INLINE]);
        let (mut next_heap, mut row_heap);
        let (mut next, mut row): (&mut [bool], &mut [bool]) = if width <= INLINE {
            (&mut next_inline[..width], &mut row_inline[..width])
        } else {
            next_heap = vec![false; width];
            row_heap = vec![false; width];
            (&mut next_heap[..], &mut row_heap[..])
        };
        for (j, cell) in next.iter_mut().enumerate() {
            *cell = j == m && self.end_ok(n);
        }
        for i in (0..n).rev() {
            let hop = &self.hops[i];
            let trailing = self.ends_selector && i + 1 == n;
            match hop.segment {
                SegmentPattern::Recursive => {
                    // `any_end`: for some k > j, the `**` may stop after consuming segments
                    // `j..k` (the kind checked on segment `k - 1`) and hops `i + 1..` match
                    // from `k`; kept as a running OR while j goes down.
                    let mut any_end = false;
                    for j in (0..=m).rev() {
                        if j < m && self.kind_ok(hop, j) && next[j + 1] {
                            any_end = true;
                        }
                        let zero = !trailing && hop.kind.is_any() && next[j];
                        row[j] = zero || any_end || (j == m && self.end_ok(i));
                    }
                }
                _ => {
                    for j in 0..=m {
                        row[j] = (j < m
                            && self.segment_ok(&hop.segment, j)
                            && self.kind_ok(hop, j)
                            && next[j + 1])
                            || (j == m && self.end_ok(i));
                    }
                }
            }
            std::mem::swap(&mut next, &mut row);
        }
        next.first().copied().unwrap_or(false)
    }

    /// Whether the point may end when hops `i..` are still unmatched.
    fn end_ok(&self, i: usize) -> bool {
        if i == self.hops.len() && self.accept_all {
            return true;
        }
        self.accept_inclusive_end && i > 0 && self.hops.get(i - 1).is_some_and(|h| h.inclusive)
    }

    fn segment_ok(&self, pattern: &SegmentPattern, j: usize) -> bool {
        let Some(segment) = self.segments.get(j) else {
            return false;
        };
        match (pattern, segment) {
            (SegmentPattern::Any | SegmentPattern::Recursive, _) => true,
            (SegmentPattern::Exact(name), PointSeg::Space(s) | PointSeg::Base(s)) => {
                !self.in_fs && name == s
            }
            (SegmentPattern::Exact(name), PointSeg::Dir(s) | PointSeg::File(s)) => {
                self.in_fs && name == s
            }
            (SegmentPattern::Version(v), PointSeg::Version(s)) => v == s,
            (SegmentPattern::VersionReq(req), PointSeg::Version(s)) => req.matches(s),
            _ => false,
        }
    }

    fn kind_ok(&self, hop: &Hop, j: usize) -> bool {
        match self.kinds {
            None => hop.kind.is_any(),
            Some(kinds) => kinds.get(j).is_some_and(|kind| hop.kind.matches(kind)),
        }
    }
}

/// Why a [`PointHierarchy`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum HierarchyError {
    /// The number of kinds differs from the number of segments.
    #[error("'{point}' has {segments} segment(s) but {kinds} kind(s) were given")]
    KindCount {
        /// The point.
        point: String,
        /// How many segments it has.
        segments: usize,
        /// How many kinds were given.
        kinds: usize,
    },
}

/// A point together with the kind of the particle at each of its segments (`kinds[0]` is the
/// space's kind, the last is the point's own): what a [`Selector`] with kind selectors needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "HierarchyParts")]
pub struct PointHierarchy {
    point: Point,
    kinds: Vec<Kind>,
}

/// The unchecked form [`PointHierarchy`] deserializes through, so the invariant holds after a
/// trip over the wire too.
#[derive(Deserialize)]
struct HierarchyParts {
    point: Point,
    kinds: Vec<Kind>,
}

impl TryFrom<HierarchyParts> for PointHierarchy {
    type Error = HierarchyError;
    fn try_from(parts: HierarchyParts) -> Result<Self, HierarchyError> {
        PointHierarchy::new(parts.point, parts.kinds)
    }
}

impl PointHierarchy {
    /// A point and one kind per segment, outermost first; fails if the counts differ.
    pub fn new(point: Point, kinds: Vec<Kind>) -> Result<PointHierarchy, HierarchyError> {
        if point.segments().len() != kinds.len() {
            return Err(HierarchyError::KindCount {
                point: point.to_string(),
                segments: point.segments().len(),
                kinds: kinds.len(),
            });
        }
        Ok(PointHierarchy { point, kinds })
    }

    /// `ROOT`, which has no segments and so no kinds.
    pub fn root() -> PointHierarchy {
        PointHierarchy {
            point: Point::root(),
            kinds: Vec::new(),
        }
    }

    /// The point.
    pub fn point(&self) -> &Point {
        &self.point
    }

    /// The kind of each segment, outermost first.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }

    /// The kind of the point itself (`Root` for `ROOT`).
    pub fn kind(&self) -> Kind {
        self.kinds.last().cloned().unwrap_or(Kind::Root)
    }

    /// The hierarchy one segment down: `segment` of kind `kind` appended (checked as
    /// [`Point::push`] checks it).
    pub fn push(&self, segment: PointSeg, kind: Kind) -> Result<PointHierarchy, crate::PointError> {
        let point = self.point.push(segment)?;
        let mut kinds = self.kinds.clone();
        kinds.push(kind);
        Ok(PointHierarchy { point, kinds })
    }

    /// The ancestor with `depth` segments (`0` is `ROOT`); `None` if deeper than the point.
    pub fn ancestor(&self, depth: usize) -> Option<PointHierarchy> {
        let mut point = self.point.clone();
        while point.segments().len() > depth {
            point = point.parent()?;
        }
        if point.segments().len() != depth {
            return None;
        }
        Some(PointHierarchy {
            point,
            kinds: self.kinds.get(..depth)?.to_vec(),
        })
    }
}

impl fmt::Display for PointHierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.point.fmt(f)
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

    fn sel(s: &str) -> Selector {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn point(s: &str) -> Point {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn kind(s: &str) -> Kind {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ksel(s: &str) -> KindSelector {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// A hierarchy from a point and its kinds written as text, one per segment.
    fn hier(p: &str, kinds: &[&str]) -> PointHierarchy {
        PointHierarchy::new(point(p), kinds.iter().map(|k| kind(k)).collect())
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// Asserts `selector` matches exactly the points in `yes` and none in `no` (kind-less).
    fn check(selector: &str, yes: &[&str], no: &[&str]) {
        let s = sel(selector);
        for p in yes {
            assert!(s.matches_point(&point(p)), "{selector} should match {p}");
        }
        for p in no {
            assert!(
                !s.matches_point(&point(p)),
                "{selector} should not match {p}"
            );
        }
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        check(
            "localhost:*",
            &["localhost:app", "localhost:users"],
            &["localhost", "localhost:app:x", "other:app", "ROOT"],
        );
        check(
            "*",
            &["localhost", "my-domain.com"],
            &["ROOT", "localhost:app"],
        );
        check(
            "*:app",
            &["localhost:app", "other:app"],
            &["localhost:apps", "localhost:app:x"],
        );
    }

    #[test]
    fn double_star_in_the_middle_matches_zero_or_more() {
        check(
            "localhost:**:scott",
            &[
                "localhost:scott",
                "localhost:users:scott",
                "localhost:app:users:scott",
            ],
            &[
                "localhost",
                "localhost:scott:x",
                "other:users:scott",
                "localhost:users",
            ],
        );
        check(
            "**:scott",
            &["scott", "localhost:scott", "a:b:c:scott"],
            &["localhost", "scott:x"],
        );
        check(
            "localhost:**:users:**:scott",
            &["localhost:users:scott", "localhost:a:users:b:c:scott"],
            &["localhost:scott", "localhost:users"],
        );
    }

    #[test]
    fn trailing_double_star_matches_descendants_only() {
        check(
            "localhost:**",
            &[
                "localhost:app",
                "localhost:app:users:scott",
                "localhost:base:/a/b.txt",
            ],
            &["localhost", "other:app", "ROOT"],
        );
        check("**", &["localhost", "localhost:a:b"], &["ROOT"]);
    }

    #[test]
    fn inclusive_hops_match_the_point_they_end_at() {
        check(
            "localhost+:**",
            &["localhost", "localhost:app", "localhost:app:x:y"],
            &["other", "ROOT"],
        );
        check(
            "localhost:app+:**",
            &["localhost:app", "localhost:app:x"],
            &["localhost", "localhost:other"],
        );
        // `+` in the middle lets the point stop there even though more hops follow.
        check(
            "localhost+:users:*",
            &["localhost", "localhost:users:scott"],
            &["localhost:users", "localhost:other:scott"],
        );
        // `+` on the last hop changes nothing.
        assert_eq!(
            sel("localhost:app+").matches_point(&point("localhost:app")),
            sel("localhost:app").matches_point(&point("localhost:app"))
        );
        check(
            "localhost:app+",
            &["localhost:app"],
            &["localhost", "localhost:app:x"],
        );
        // A `+` on a middle `**` lets the point end wherever the `**` may: everywhere.
        check("**+:x", &["ROOT", "a", "a:b:c", "a:x"], &[]);
        check("**:x", &["x", "a:x"], &["ROOT", "a"]);
    }

    #[test]
    fn versions_match_exactly_or_by_requirement() {
        check(
            "repo:hello:1.0.0",
            &["repo:hello:1.0.0"],
            &["repo:hello:1.0.1", "repo:hello", "repo:hello:1.0.0:/"],
        );
        check(
            "repo:hello:(^1.0.0)",
            &["repo:hello:1.0.0", "repo:hello:1.9.3"],
            &["repo:hello:2.0.0", "repo:hello:0.9.0", "repo:other:1.0.0"],
        );
        check(
            "repo:*:(>=2, <3)",
            &["repo:a:2.0.0", "repo:b:2.99.0"],
            &["repo:a:3.0.0", "repo:a:1.0.0"],
        );
        // A version hop never matches a base, nor a name hop a version.
        check("repo:hello:*", &["repo:hello:1.0.0", "repo:hello:x"], &[]);
        let base_is_not_version = sel("repo:(^1)");
        assert!(!base_is_not_version.matches_point(&point("repo:hello")));
    }

    #[test]
    fn file_system_parts() {
        check(
            "localhost:repo:site:1.0.0:/html/**",
            &[
                "localhost:repo:site:1.0.0:/html/index.html",
                "localhost:repo:site:1.0.0:/html/css/site.css",
                "localhost:repo:site:1.0.0:/html/css/",
            ],
            &[
                "localhost:repo:site:1.0.0:/html/",
                "localhost:repo:site:1.0.0:/",
                "localhost:repo:site:1.0.0",
                "localhost:repo:site:2.0.0:/html/index.html",
                "localhost:repo:site:1.0.0:/js/x.js",
            ],
        );
        // A bare `:/` is the file-system root itself.
        check(
            "repo:hello:1.0.0:/",
            &["repo:hello:1.0.0:/"],
            &["repo:hello:1.0.0", "repo:hello:1.0.0:/a.txt"],
        );
        // Exact names in fs position match directories and files alike.
        check(
            "localhost:base:/a/b",
            &["localhost:base:/a/b", "localhost:base:/a/b/"],
            &["localhost:base:/a/", "localhost:base:/a/b/c"],
        );
        check(
            "localhost:base:/*",
            &["localhost:base:/a.txt", "localhost:base:/dir/"],
            &["localhost:base:/", "localhost:base:/dir/a.txt"],
        );
        // The main hops must reach exactly to `:/`.
        check(
            "localhost:*:/**",
            &["localhost:base:/a.txt"],
            &["localhost:a:b:/a.txt", "localhost:base"],
        );
        // A `**` just before `:/` is not trailing: it may match zero segments.
        check(
            "localhost:**:/x.txt",
            &[
                "localhost:a:b:/x.txt",
                "localhost:a:/x.txt",
                "localhost:/x.txt",
            ],
            &["localhost:a:b:/y.txt", "localhost:a:b"],
        );
        // An inclusive main hop lets a point without a file system stop there.
        check(
            "localhost:base+:/**",
            &["localhost:base", "localhost:base:/a.txt"],
            &["localhost:base:/", "localhost:base:x"],
        );
        // Inclusive hops inside the file system.
        check(
            "localhost:base:/html+/**",
            &["localhost:base:/html/", "localhost:base:/html/a.html"],
            &["localhost:base:/", "localhost:base:/css/"],
        );
    }

    #[test]
    fn without_an_fs_part_wildcards_cross_into_the_file_system() {
        check(
            "localhost:base:**",
            &["localhost:base:/", "localhost:base:/a/b/c.txt"],
            &["localhost:base"],
        );
        check(
            "localhost:base:*",
            &["localhost:base:/", "localhost:base:x"],
            &["localhost:base:/a.txt"],
        );
        // Exact names outside an fs part only match spaces and bases.
        check(
            "localhost:base:**:a",
            &["localhost:base:x:a"],
            &["localhost:base:/a"],
        );
    }

    #[test]
    fn routes_other_than_this_never_match() {
        check(
            "**",
            &["localhost"],
            &["GLOBAL::executor", "LOCAL::star", "[hub]::org.com:name"],
        );
        check("executor", &["executor"], &["GLOBAL::executor"]);
    }

    #[test]
    fn kind_selectors_match_base_sub_and_specific() {
        assert!(ksel("*").matches(&kind("Space")));
        assert!(ksel("Artifact").matches(&kind("Artifact<Wasm>")));
        assert!(ksel("Artifact").matches(&kind("Artifact<Dir>")));
        assert!(!ksel("Artifact").matches(&kind("File<File>")));
        assert!(ksel("*<Wasm>").matches(&kind("Artifact<Wasm>")));
        assert!(!ksel("*<Wasm>").matches(&kind("Artifact<Raw>")));
        assert!(!ksel("*<Wasm>").matches(&kind("Mechtron")));
        assert!(ksel("*<Dir>").matches(&kind("File<Dir>")));
        assert!(ksel("Star<Fold>").matches(&kind("Star<Fold>")));
        assert!(!ksel("Star<Fold>").matches(&kind("Star<Central>")));
        assert!(ksel("Star<*>").matches(&kind("Star<Central>")));
        assert!(ksel("UserBase<*>").matches(&kind("UserBase")));
        assert!(!ksel("UserBase<OAuth>").matches(&kind("UserBase")));
        let pg = kind("Database<Relational<starlane.io:postgres.org:postgres:gis:15.2.0>>");
        assert!(ksel("Database").matches(&pg));
        assert!(ksel("Database<Relational>").matches(&pg));
        assert!(!ksel("Database<KeyValue>").matches(&pg));
        assert!(ksel("Database<Relational<*:postgres.org:*:*:(^15)>>").matches(&pg));
        assert!(ksel("Database<Relational<*:*:*:gis:15.2.0>>").matches(&pg));
        assert!(!ksel("Database<Relational<*:*:*:*:(^16)>>").matches(&pg));
        assert!(!ksel("Database<Relational<*:mysql.com:*:*:*>>").matches(&pg));
        assert!(!ksel("Database<Relational<*:*:*:plain:*>>").matches(&pg));
        assert!(!ksel("Database<*<*:*:*:*:*>>").matches(&kind("Database<KeyValue>")));
    }

    #[test]
    fn hops_check_kinds_in_a_hierarchy() {
        let echo = hier("localhost:app:echo", &["Space", "App", "Mechtron"]);
        assert!(sel("localhost:**<Mechtron>").matches(&echo));
        assert!(sel("**<Mechtron>").matches(&echo));
        assert!(sel("*:app<App>:*").matches(&echo));
        assert!(!sel("*:app<Base>:*").matches(&echo));
        assert!(!sel("localhost:**<App>").matches(&echo));
        // `**<X>` checks the last segment it consumed.
        assert!(sel("localhost:**<App>:echo").matches(&echo));
        assert!(!sel("localhost:**<Space>:echo").matches(&echo));
        // ... and matches zero segments only when X is `*`.
        assert!(sel("localhost:**:app:echo").matches(&echo));
        assert!(!sel("localhost:**<App>:app:echo").matches(&echo));
        // Kind selectors fail without kinds.
        assert!(!sel("**<Mechtron>").matches_point(echo.point()));
        assert!(sel("**").matches_point(echo.point()));

        let users = hier("localhost:users:scott", &["Space", "UserBase", "User"]);
        assert!(sel("localhost:*<User>").matches(&hier("localhost:scott", &["Space", "User"])));
        assert!(sel("localhost:users:*<User>").matches(&users));
        assert!(sel("localhost:**<User>").matches(&users));
        assert!(!sel("localhost:*<User>").matches(&users));

        let wasm = hier(
            "localhost:repo:hello:1.0.0:/wasm/hello.wasm",
            &[
                "Space",
                "Repo",
                "BundleSeries",
                "Bundle",
                "Artifact<Dir>",
                "Artifact<Dir>",
                "Artifact<Wasm>",
            ],
        );
        assert!(sel("**<*<Wasm>>").matches(&wasm));
        assert!(sel("**<Artifact>").matches(&wasm));
        assert!(
            sel("localhost:repo:hello:(^1):/*<Artifact<Dir>>/*<Artifact<Wasm>>").matches(&wasm)
        );
        assert!(!sel("localhost:repo:hello:(^1):/*<Artifact<Raw>>/*").matches(&wasm));
        assert!(
            sel("*:repo<Repo>:hello<BundleSeries>:*<Bundle>:/**<Artifact<Wasm>>").matches(&wasm)
        );
        assert!(!sel("*:repo:hello<BundleSeries>:*<Bundle>:/**<Artifact<Dir>>").matches(&wasm));
    }

    #[test]
    fn many_double_stars_stay_fast() {
        // 60 `**` against a 200-segment point that does not end in the last literal: a naive
        // backtracking matcher would take exponential time here.
        let selector = sel(&format!("{}z", "**:a:".repeat(60)));
        let mut text = "a".to_string();
        for _ in 0..199 {
            text.push_str(":a");
        }
        let long = point(&text);
        assert!(!selector.matches_point(&long));
        let selector = sel(&format!("{}a", "**:".repeat(60)));
        assert!(selector.matches_point(&long));
    }

    #[test]
    fn hierarchies_check_their_length() {
        let err = PointHierarchy::new(point("localhost:app"), vec![Kind::Space]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'localhost:app' has 2 segment(s) but 1 kind(s) were given"
        );
        let ok = hier("localhost:app", &["Space", "App"]);
        assert_eq!(ok.kind(), Kind::App);
        assert_eq!(PointHierarchy::root().kind(), Kind::Root);
        let parent = ok.ancestor(1).unwrap();
        assert_eq!(parent, hier("localhost", &["Space"]));
        assert_eq!(ok.ancestor(0).unwrap(), PointHierarchy::root());
        assert_eq!(ok.ancestor(3), None);
    }

    #[test]
    fn matching_with_kinds_equals_matching_the_hierarchy() {
        let point: Point = "localhost:app:echo".parse().unwrap();
        let kinds = vec![Kind::Space, Kind::App, Kind::Mechtron];
        let hierarchy = PointHierarchy::new(point.clone(), kinds.clone()).unwrap();
        for s in [
            "localhost:**<Mechtron>",
            "**<App>:*",
            "**<Space>",
            "*:*<App>:echo<User>",
        ] {
            let selector: Selector = s.parse().unwrap();
            assert_eq!(
                selector.matches_kinds(&point, &kinds),
                selector.matches(&hierarchy),
                "{s}"
            );
        }
        let selector: Selector = "localhost:**<Mechtron>".parse().unwrap();
        assert!(selector.matches_kinds(&point, &kinds));
        assert!(!selector.matches_kinds(&point, &kinds[..2]));
    }

    #[test]
    fn literal_prefixes() {
        let prefix = |s: &str| sel(s).literal_prefix().map(|p| p.to_string());
        assert_eq!(prefix("localhost:app:**").as_deref(), Some("localhost:app"));
        assert_eq!(
            prefix("localhost:app:*:x").as_deref(),
            Some("localhost:app")
        );
        assert_eq!(prefix("localhost").as_deref(), Some("localhost"));
        assert_eq!(prefix("**<Mechtron>"), None);
        assert_eq!(prefix("*:app"), None);
        assert_eq!(prefix("localhost+:**").as_deref(), Some("localhost"));
        assert_eq!(
            prefix("localhost:app+:users:**").as_deref(),
            Some("localhost:app")
        );
        assert_eq!(
            prefix("repo:hello:1.0.0:x").as_deref(),
            Some("repo:hello:1.0.0")
        );
        assert_eq!(prefix("repo:hello:(^1):/a").as_deref(), Some("repo:hello"));
        assert_eq!(
            prefix("localhost:repo:site:1.0.0:/html/**").as_deref(),
            Some("localhost:repo:site:1.0.0:/html/")
        );
        assert_eq!(
            prefix("localhost:base:/a/b/c.txt").as_deref(),
            Some("localhost:base:/a/b/")
        );
        assert_eq!(
            prefix("localhost:base:/").as_deref(),
            Some("localhost:base:/")
        );
        // Every point a selector matches lies within its prefix.
        for (s, p) in [
            ("localhost:app:**", "localhost:app:x:y"),
            ("localhost:app+:users:**", "localhost:app"),
            ("localhost:base:/a/b/c.txt", "localhost:base:/a/b/c.txt"),
        ] {
            let selector = sel(s);
            let target = point(p);
            assert!(selector.matches_point(&target), "{s} ~ {p}");
            assert!(
                target.is_within(&selector.literal_prefix().unwrap()),
                "{s} ~ {p}"
            );
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
