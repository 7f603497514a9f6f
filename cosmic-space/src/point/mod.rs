//! Points: the addresses of particles (SPEC §2).
//!
//! ```
//! use cosmic_space::Point;
//!
//! let file: Point = "repo:hello:1.0.0:/wasm/hello.wasm".parse()?;
//! assert_eq!(file.parent().unwrap().to_string(), "repo:hello:1.0.0:/wasm/");
//! assert_eq!(file.to_string().parse::<Point>()?, file);
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::syntax::{Cursor, ParseError, is_skewer};

mod var;

pub(crate) use var::parse_var_name;
pub use var::{Env, Lead, PointVar, VarSeg};

/// Where a point lives relative to this cosmos: the part before `::`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum RouteSeg {
    /// This cosmos, the default (printed as nothing).
    #[default]
    This,
    /// `GLOBAL::` — cosmos-wide services such as the executor and the registry.
    Global,
    /// `LOCAL::` — the star the wave is on.
    Local,
    /// `REMOTE::` — the other end of a connection.
    Remote,
    /// `<<STAR::constellation:name[index]>>::` — one particular star.
    Star(StarKey),
    /// `[tag]::` — a point named by a tag the hyperspace resolves.
    Tag(String),
    /// `domain::` — another cosmos.
    Domain(String),
}

/// The identity of a star: `STAR::constellation:name[index]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StarKey {
    /// The group of stars it belongs to, e.g. `central`.
    pub constellation: String,
    /// The star's name within the constellation, e.g. `nexus`.
    pub name: String,
    /// Its index among stars of that name.
    pub index: u16,
}

impl StarKey {
    /// A star key from its parts; `constellation` and `name` must be skewer case.
    pub fn new(constellation: &str, name: &str, index: u16) -> Result<Self, ParseError> {
        format!("STAR::{constellation}:{name}[{index}]").parse()
    }

    /// The point of the star itself: `<<STAR::…>>::star`.
    pub fn point(&self) -> Point {
        Point {
            route: RouteSeg::Star(self.clone()),
            segments: vec![PointSeg::Space("star".to_string())],
        }
    }

    fn parse(c: &mut Cursor<'_>) -> Result<Self, ParseError> {
        c.expect("STAR::", "'STAR::' to begin a star key")?;
        let constellation = skewer(c, "a constellation name (skewer case)")?;
        c.expect(":", "':' between constellation and star name")?;
        let name = skewer(c, "a star name (skewer case)")?;
        c.expect("[", "'[' before the star index")?;
        let at = c.pos();
        let digits = c.take_while(|ch| ch.is_ascii_digit());
        let index = digits
            .parse::<u16>()
            .map_err(|_| c.error_at(at, "expected a star index (0-65535)"))?;
        c.expect("]", "']' after the star index")?;
        Ok(StarKey {
            constellation: constellation.to_string(),
            name: name.to_string(),
            index,
        })
    }
}

impl fmt::Display for StarKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "STAR::{}:{}[{}]",
            self.constellation, self.name, self.index
        )
    }
}

impl FromStr for StarKey {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("star key", s, StarKey::parse)
    }
}

impl fmt::Display for RouteSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteSeg::This => Ok(()),
            RouteSeg::Global => f.write_str("GLOBAL::"),
            RouteSeg::Local => f.write_str("LOCAL::"),
            RouteSeg::Remote => f.write_str("REMOTE::"),
            RouteSeg::Star(key) => write!(f, "<<{key}>>::"),
            RouteSeg::Tag(tag) => write!(f, "[{tag}]::"),
            RouteSeg::Domain(domain) => write!(f, "{domain}::"),
        }
    }
}

/// One segment of a point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PointSeg {
    /// The first segment: a domain such as `localhost` or `my-domain.com`.
    Space(String),
    /// A skewer-case segment below the space.
    Base(String),
    /// A semantic version, e.g. the `1.0.0` of a bundle.
    Version(Version),
    /// `:/`, the root of a file system owned by the segment before it.
    FsRoot,
    /// A directory inside a file system (printed with its trailing `/`).
    Dir(String),
    /// A file inside a file system.
    File(String),
}

impl PointSeg {
    /// True for the segments of a file system (`:/`, directories and files).
    pub fn is_filesystem(&self) -> bool {
        matches!(
            self,
            PointSeg::FsRoot | PointSeg::Dir(_) | PointSeg::File(_)
        )
    }

    /// The segment's text as it appears in a point (`1.0.0`, `wasm/`, `/`, `hello.wasm`).
    pub fn as_text(&self) -> String {
        match self {
            PointSeg::Space(s) | PointSeg::Base(s) | PointSeg::File(s) => s.clone(),
            PointSeg::Version(v) => v.to_string(),
            PointSeg::FsRoot => "/".to_string(),
            PointSeg::Dir(d) => format!("{d}/"),
        }
    }
}

/// Why a segment cannot be appended to a point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    /// The segment is not allowed after what the point already holds.
    #[error("cannot append {segment} to '{point}': {reason}")]
    BadChild {
        /// The point that was being extended.
        point: String,
        /// The segment that was refused.
        segment: String,
        /// Why.
        reason: &'static str,
    },
    /// The text for a segment or path does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A `${name}` has no value in the environment.
    #[error("variable '${{{0}}}' is not set")]
    MissingVariable(String),
    /// A relative point (`.`, `..`) was resolved without a working point.
    #[error("'.' and '..' need a working point, and there is none here")]
    NoWorkingPoint,
    /// `..` went above `ROOT`.
    #[error("'..' goes above ROOT")]
    AboveRoot,
    /// A variable's value does not fit where the variable stands.
    #[error("variable '${{{name}}}' = '{value}' does not fit here: {reason}")]
    BadVariable {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it does not fit.
        reason: String,
    },
}

/// The address of a particle, e.g. `localhost:app:users:scott` (SPEC §2.1).
///
/// A point is a route plus a list of segments. The empty list is `ROOT`. Printing is canonical
/// and round-trips through [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Point {
    route: RouteSeg,
    segments: Vec<PointSeg>,
}

impl Point {
    /// `ROOT`, the single root of the cosmos.
    pub fn root() -> Point {
        Point {
            route: RouteSeg::This,
            segments: Vec::new(),
        }
    }

    /// A top-level space, e.g. `localhost`; fails unless `domain` is a valid domain.
    pub fn space(domain: &str) -> Result<Point, ParseError> {
        Cursor::parse_all("space", domain, |c| {
            Ok(Point {
                route: RouteSeg::This,
                segments: vec![PointSeg::Space(parse_domain(c, "a space")?)],
            })
        })
    }

    /// Builds a point from its parts; the caller vouches for their validity (used by the
    /// well-known points and by code that already holds parsed segments).
    fn from_parts(route: RouteSeg, segments: Vec<PointSeg>) -> Point {
        Point { route, segments }
    }

    /// `hyperspace:users:hyperuser`, the superuser agent.
    pub fn hyperuser() -> Point {
        well_known(&["hyperspace", "users", "hyperuser"])
    }

    /// `hyperspace:users:anonymous`, the agent of unauthenticated requests.
    pub fn anonymous() -> Point {
        well_known(&["hyperspace", "users", "anonymous"])
    }

    /// `GLOBAL::executor`, which runs commands.
    pub fn global_executor() -> Point {
        global("executor")
    }

    /// `GLOBAL::registry`.
    pub fn global_registry() -> Point {
        global("registry")
    }

    /// `GLOBAL::logger`.
    pub fn global_logger() -> Point {
        global("logger")
    }

    /// `LOCAL::star`, the star a wave is on.
    pub fn local_star() -> Point {
        Point::from_parts(RouteSeg::Local, vec![PointSeg::Space("star".to_string())])
    }

    /// The route (the part before `::`).
    pub fn route(&self) -> &RouteSeg {
        &self.route
    }

    /// The same segments with another route.
    pub fn with_route(mut self, route: RouteSeg) -> Point {
        self.route = route;
        self
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[PointSeg] {
        &self.segments
    }

    /// True for `ROOT` (with any route).
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The last segment, `None` for `ROOT`.
    pub fn last_segment(&self) -> Option<&PointSeg> {
        self.segments.last()
    }

    /// True if the point is inside a file system (it has a `:/`).
    pub fn is_filesystem(&self) -> bool {
        self.segments.iter().any(PointSeg::is_filesystem)
    }

    /// The point that owns this point's file system: everything before `:/`.
    pub fn filesystem_owner(&self) -> Option<Point> {
        let at = self.segments.iter().position(|s| *s == PointSeg::FsRoot)?;
        Some(Point::from_parts(
            self.route.clone(),
            self.segments[..at].to_vec(),
        ))
    }

    /// The file-system path of a point inside one (`/wasm/hello.wasm`), `None` outside.
    pub fn filesystem_path(&self) -> Option<String> {
        let at = self.segments.iter().position(|s| *s == PointSeg::FsRoot)?;
        Some(self.segments[at..].iter().map(PointSeg::as_text).collect())
    }

    /// The parent: one segment up (`ROOT` has none). A file's parent is its directory, a
    /// directory's the one above, and `:/`'s the point that owns the file system.
    pub fn parent(&self) -> Option<Point> {
        if self.segments.is_empty() {
            return None;
        }
        let mut segments = self.segments.clone();
        segments.pop();
        Some(Point::from_parts(self.route.clone(), segments))
    }

    /// All ancestors from `ROOT` down to the parent, outermost first.
    pub fn ancestors(&self) -> impl Iterator<Item = Point> + '_ {
        (0..self.segments.len())
            .map(|n| Point::from_parts(self.route.clone(), self.segments[..n].to_vec()))
    }

    /// True if `self` is `other` or lies below it.
    pub fn is_within(&self, other: &Point) -> bool {
        self.route == other.route && self.segments.starts_with(&other.segments)
    }

    /// Appends one segment, checking that it may follow what the point already holds.
    pub fn push(&self, segment: PointSeg) -> Result<Point, PointError> {
        let refuse = |reason| PointError::BadChild {
            point: self.to_string(),
            segment: format!("{segment:?}"),
            reason,
        };
        let last = self.segments.last();
        match (&segment, last) {
            (PointSeg::Space(_), None) => {}
            (PointSeg::Space(_), Some(_)) => return Err(refuse("a space can only follow ROOT")),
            (_, None) => return Err(refuse("below ROOT only a space may follow")),
            (PointSeg::Base(_), Some(PointSeg::Space(_) | PointSeg::Base(_))) => {}
            (PointSeg::Version(_), Some(PointSeg::Space(_) | PointSeg::Base(_))) => {}
            (PointSeg::FsRoot, Some(l)) if !l.is_filesystem() => {}
            (PointSeg::Dir(_) | PointSeg::File(_), Some(PointSeg::FsRoot | PointSeg::Dir(_))) => {}
            (PointSeg::Base(_) | PointSeg::Version(_), Some(PointSeg::Version(_))) => {
                return Err(refuse("only ':/' may follow a version"));
            }
            (_, Some(PointSeg::File(_))) => return Err(refuse("nothing may follow a file")),
            _ => return Err(refuse("it cannot follow the last segment")),
        }
        if let PointSeg::Base(b) = &segment
            && !is_skewer(b)
        {
            return Err(refuse("a base segment must be skewer case"));
        }
        if let PointSeg::Dir(n) | PointSeg::File(n) = &segment
            && !is_fs_name(n)
        {
            return Err(refuse(
                "a file or directory name must be [A-Za-z0-9._-]+, never '.' or '..'",
            ));
        }
        let mut segments = self.segments.clone();
        segments.push(segment);
        Ok(Point::from_parts(self.route.clone(), segments))
    }

    /// Appends a skewer-case base segment, e.g. `push_base("users")`.
    pub fn push_base(&self, base: &str) -> Result<Point, PointError> {
        self.push(PointSeg::Base(base.to_string()))
    }

    /// Appends segments written as in a point: `"users:scott"`, `"1.0.0"`, `"users:/a/b.txt"`.
    pub fn push_str(&self, text: &str) -> Result<Point, PointError> {
        let suffix = Cursor::parse_all("point segments", text, |c| {
            let mut segments = Vec::new();
            parse_tail(c, &mut segments, true)?;
            Ok(segments)
        })?;
        suffix
            .into_iter()
            .try_fold(self.clone(), |point, segment| point.push(segment))
    }

    /// Appends a file-system path (`wasm/hello.wasm`, `html/`), adding `:/` if the point is
    /// not yet inside a file system. A trailing `/` makes the last name a directory.
    pub fn push_path(&self, path: &str) -> Result<Point, PointError> {
        let mut point = if self.is_filesystem() {
            self.clone()
        } else {
            self.push(PointSeg::FsRoot)?
        };
        let path = path.strip_prefix('/').unwrap_or(path);
        let fs = Cursor::parse_all("file path", path, parse_fs_path)?;
        for segment in fs {
            point = point.push(segment)?;
        }
        Ok(point)
    }

    /// Parses a point at the cursor (used by the other grammars).
    pub fn parse(c: &mut Cursor<'_>) -> Result<Point, ParseError> {
        let route = parse_route(c)?;
        if c.eat("ROOT") {
            if c.peek()
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == ':')
            {
                return Err(c.error("'ROOT' stands alone and takes no segments"));
            }
            return Ok(Point::from_parts(route, Vec::new()));
        }
        let mut segments = vec![PointSeg::Space(parse_domain(c, "a space")?)];
        parse_tail(c, &mut segments, false)?;
        Ok(Point::from_parts(route, segments))
    }
}

fn well_known(bases: &[&str]) -> Point {
    let mut segments = vec![PointSeg::Space(bases[0].to_string())];
    segments.extend(bases[1..].iter().map(|b| PointSeg::Base(b.to_string())));
    Point::from_parts(RouteSeg::This, segments)
}

fn global(name: &str) -> Point {
    Point::from_parts(RouteSeg::Global, vec![PointSeg::Space(name.to_string())])
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.route)?;
        if self.segments.is_empty() {
            return f.write_str("ROOT");
        }
        write_segments(f, &self.segments)
    }
}

/// Writes segments as a point spells them: `:` between non-file-system segments, `:/` before
/// the file system, names inside it joined by their own `/`.
pub(crate) fn write_segments(f: &mut fmt::Formatter<'_>, segments: &[PointSeg]) -> fmt::Result {
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            PointSeg::Space(s) => f.write_str(s)?,
            PointSeg::Base(b) => write!(f, ":{b}")?,
            PointSeg::Version(v) => write!(f, ":{v}")?,
            PointSeg::FsRoot => f.write_str(if i == 0 { "/" } else { ":/" })?,
            PointSeg::Dir(d) => write!(f, "{d}/")?,
            PointSeg::File(n) => f.write_str(n)?,
        }
    }
    Ok(())
}

impl FromStr for Point {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("point", s, Point::parse)
    }
}

impl TryFrom<&str> for Point {
    type Error = ParseError;
    fn try_from(s: &str) -> Result<Self, ParseError> {
        s.parse()
    }
}

/// `route "::"` if there is one, else [`RouteSeg::This`].
pub(crate) fn parse_route(c: &mut Cursor<'_>) -> Result<RouteSeg, ParseError> {
    for (word, route) in [
        ("GLOBAL::", RouteSeg::Global),
        ("LOCAL::", RouteSeg::Local),
        ("REMOTE::", RouteSeg::Remote),
    ] {
        if c.eat(word) {
            return Ok(route);
        }
    }
    if c.eat("<<") {
        let key = StarKey::parse(c)?;
        c.expect(">>::", "'>>::' after the star key")?;
        return Ok(RouteSeg::Star(key));
    }
    if c.eat("[") {
        let tag = skewer(c, "a tag (skewer case)")?.to_string();
        c.expect("]::", "']::' after the tag")?;
        return Ok(RouteSeg::Tag(tag));
    }
    // A domain followed by `::` names another cosmos; otherwise it is the space.
    let start = c.pos();
    if c.peek()
        .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && let Ok(domain) = parse_domain(c, "a domain")
        && c.eat("::")
    {
        return Ok(RouteSeg::Domain(domain));
    }
    c.reset(start);
    Ok(RouteSeg::This)
}

/// `label { "." label }` with `label := [a-z0-9][a-z0-9-]*`, no trailing `-`.
pub(crate) fn parse_domain(c: &mut Cursor<'_>, what: &str) -> Result<String, ParseError> {
    let start = c.pos();
    loop {
        let label_start = c.pos();
        if !c
            .peek()
            .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        {
            let message = if label_start == start {
                format!("expected {what}: a domain of lower-case labels separated by '.'")
            } else {
                "expected a domain label ([a-z0-9][a-z0-9-]*) after '.'".to_string()
            };
            return Err(c.error(message));
        }
        let label = c.take_while(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
        if label.ends_with('-') {
            return Err(c.error_at(c.pos() - 1, "a domain label may not end with '-'"));
        }
        if !c.eat_char('.') {
            break;
        }
    }
    Ok(c.input()[start..c.pos()].to_string())
}

/// The segments after the space: `{ ":" base } [ ":" version ] [ ":/" fs-path ]`. With
/// `leading` the first segment has no `:` before it (for [`Point::push_str`]).
fn parse_tail(
    c: &mut Cursor<'_>,
    segments: &mut Vec<PointSeg>,
    mut leading: bool,
) -> Result<(), ParseError> {
    loop {
        if !leading {
            if c.peek() != Some(':') || c.peek2() == Some(':') {
                return Ok(());
            }
            c.bump();
        }
        leading = false;
        let at = c.pos();
        match c.peek() {
            Some('/') => {
                c.bump();
                segments.push(PointSeg::FsRoot);
                segments.extend(parse_fs_path(c)?);
                return Ok(());
            }
            Some('0'..='9') => {
                segments.push(PointSeg::Version(parse_version(c)?));
                if c.peek() == Some(':') && c.peek2() != Some('/') {
                    return Err(
                        c.error_at(c.pos(), "only ':/' (a file system) may follow a version")
                    );
                }
            }
            Some('a'..='z') => {
                let base =
                    c.take_while(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
                if c.peek()
                    .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
                {
                    return Err(c.error("expected a skewer-case base segment ([a-z][a-z0-9-]*)"));
                }
                segments.push(PointSeg::Base(base.to_string()));
            }
            _ => {
                return Err(c.error_at(
                    at,
                    "expected a skewer-case base segment ([a-z][a-z0-9-]*), a version or ':/'",
                ));
            }
        }
    }
}

/// A semantic version: `MAJOR.MINOR.PATCH[-pre][+build]`.
pub(crate) fn parse_version(c: &mut Cursor<'_>) -> Result<Version, ParseError> {
    let at = c.pos();
    let text = c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '+'));
    Version::parse(text).map_err(|e| {
        c.error_span(
            crate::syntax::Span::new(at, c.pos()),
            format!("expected a version (MAJOR.MINOR.PATCH): '{text}' is not one: {e}"),
        )
    })
}

/// `{ dir "/" } [ file ]` after `:/`.
fn parse_fs_path(c: &mut Cursor<'_>) -> Result<Vec<PointSeg>, ParseError> {
    let mut segments = Vec::new();
    loop {
        let at = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
        if name.is_empty() {
            if c.at_end()
                || c.peek().is_some_and(|ch| {
                    !ch.is_ascii_graphic()
                        || matches!(
                            ch,
                            ';' | ',' | '{' | '}' | ')' | '@' | '^' | '<' | '>' | ']'
                        )
                })
            {
                return Ok(segments);
            }
            return Err(c.error("expected a file or directory name ([A-Za-z0-9._-]+)"));
        }
        if name == "." || name == ".." {
            return Err(c.error_span(
                crate::syntax::Span::new(at, c.pos()),
                "'.' and '..' are not allowed in a file-system path",
            ));
        }
        if c.eat_char('/') {
            segments.push(PointSeg::Dir(name.to_string()));
        } else {
            segments.push(PointSeg::File(name.to_string()));
            return Ok(segments);
        }
    }
}

fn is_fs_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
}

/// A skewer-case word or an error saying `expected`.
pub(crate) fn skewer<'a>(c: &mut Cursor<'a>, expected: &str) -> Result<&'a str, ParseError> {
    let at = c.pos();
    let word = c.take_while(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if is_skewer(word) {
        Ok(word)
    } else {
        Err(c.error_at(at, format!("expected {expected}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Point {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn spec_examples_round_trip() {
        for s in [
            "localhost",
            "localhost:app:users",
            "my-domain.com:apps:my-app",
            "repo:hello:1.0.0",
            "repo:hello:1.0.0:/wasm/hello.wasm",
            "localhost:base:/fs/file.txt",
            "localhost:base:/",
            "GLOBAL::executor",
            "<<STAR::central:nexus[0]>>::star",
            "[hub]::org.com:name",
            "ROOT",
            "my-org.com::app",
            "repo:hello:1.0.0:/wasm/",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn spec_invalid_examples_are_refused_where_they_go_wrong() {
        for (s, col) in [
            ("Localhost", 1),
            ("-localhost", 1),
            ("local..host", 7),
            ("localhost:Base", 11),
            ("localhost:my_app", 13),
            ("localhost:base:", 16),
            ("localhost:1.0.0:base", 16),
            ("localhost:1.0", 11),
            ("localhost:base:/a/../b", 19),
            ("", 1),
        ] {
            let err = s.parse::<Point>().expect_err(s);
            assert_eq!(err.line_col().1, col, "{s}: {err}");
        }
    }

    #[test]
    fn parents_walk_up_through_the_file_system() {
        let file = p("repo:hello:1.0.0:/wasm/hello.wasm");
        let dir = file.parent().unwrap();
        assert_eq!(dir.to_string(), "repo:hello:1.0.0:/wasm/");
        let root = dir.parent().unwrap();
        assert_eq!(root.to_string(), "repo:hello:1.0.0:/");
        assert_eq!(root.parent().unwrap().to_string(), "repo:hello:1.0.0");
        assert_eq!(p("localhost").parent().unwrap(), Point::root());
        assert_eq!(Point::root().parent(), None);
    }

    #[test]
    fn pushing_checks_the_grammar() {
        let bundle = p("repo:hello:1.0.0");
        assert!(bundle.push_base("x").is_err());
        assert_eq!(
            bundle.push_path("wasm/hello.wasm").unwrap(),
            p("repo:hello:1.0.0:/wasm/hello.wasm")
        );
        assert!(bundle.push_path("../etc/passwd").is_err());
        assert_eq!(
            p("localhost").push_str("app:users").unwrap(),
            p("localhost:app:users")
        );
        assert!(p("localhost").push_base("Bad").is_err());
    }

    #[test]
    fn well_known_points_print() {
        assert_eq!(Point::hyperuser().to_string(), "hyperspace:users:hyperuser");
        assert_eq!(Point::anonymous().to_string(), "hyperspace:users:anonymous");
        assert_eq!(Point::global_executor().to_string(), "GLOBAL::executor");
        assert_eq!(Point::local_star().to_string(), "LOCAL::star");
        assert_eq!(p("GLOBAL::registry"), Point::global_registry());
    }

    #[test]
    fn within_and_filesystem_owner() {
        let file = p("localhost:base:/fs/file.txt");
        assert!(file.is_within(&p("localhost")));
        assert!(!p("localhost").is_within(&file));
        assert_eq!(file.filesystem_owner().unwrap(), p("localhost:base"));
        assert_eq!(file.filesystem_path().unwrap(), "/fs/file.txt");
    }
}
