//! Bind documents: how the Field routes each incoming wave of a particle (SPEC §7).
//!
//! ```text
//! bind     := "Bind(version=" version ")" "{" { route } "}"
//! route    := "Route" [ "<" method-pattern ">" ] [ path-regex ] ( pipeline ";" | block )
//! block    := [ "->" ] "{" { line } "}"
//! line     := method-pattern [ path-regex ] pipeline ";"
//! ```
//!
//! White space and `#` comments (to the end of the line) may stand between any two tokens.
//! A path regex follows its method selector directly, begins with `/`, runs to the first white
//! space or `->`, and must match the whole path; its named captures become variables of the
//! pipeline. Pipelines are described in [`Pipeline`].
//!
//! The first route that matches wins. A block is shorthand for a run of routes that share the
//! block's selector: a line matches when both the route's selector and the line's own match,
//! the first such line wins, and when none does the search goes on with the next route. With no
//! match, `Cmd<…>` waves get the default pipeline `-> (()) => &` and every other wave gets
//! "no route" (404).
//!
//! ```
//! use cosmic_space::{Bind, Method, Selection};
//!
//! let bind: Bind = r#"
//!     Bind(version=1.0.0) {
//!       Route<Http<Get>>/static/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
//!     }"#
//!     .parse()?;
//! let get: Method = "Http<Get>".parse()?;
//! let Selection::Route { pipeline, vars } = bind.select(&get, "/static/css/a.css") else {
//!     panic!("no route");
//! };
//! assert_eq!(vars.var("path"), Some("css/a.css"));
//! assert_eq!(pipeline.to_string(), "-> localhost:repo:site:1.0.0:/html/${path} => &");
//! assert_eq!(bind.select(&get, "/nope"), Selection::NoRoute);
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::method::{Method, MethodKind, MethodPattern};
use crate::point::{Env, parse_version};
use crate::syntax::{Cursor, ParseError, Span, line_col};

mod path;
mod pipeline;

pub use path::{PathPart, PathRegex, PathTemplate};
pub(crate) use pipeline::point_vars;
pub use pipeline::{Destination, Filter, FilterError, Pipeline, Stop};

/// A bind document: the routes the Field tries, in order, for each wave a particle receives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bind {
    /// The version of the bind language the document is written in (1.x.y).
    pub version: Version,
    /// The routes, in the order they are tried.
    pub routes: Vec<Route>,
}

impl Default for Bind {
    /// A bind with no routes: `Cmd<…>` waves reach the Core, everything else is "no route".
    fn default() -> Bind {
        Bind {
            version: Version::new(1, 0, 0),
            routes: Vec::new(),
        }
    }
}

/// One `Route…` of a bind: a selector and what to do with the waves it selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// Which waves the route takes.
    pub selector: RouteSelector,
    /// A pipeline, or a block of lines that narrow the selector further.
    pub body: RouteBody,
}

/// Which waves a route or a block line takes: a method pattern and an optional path regex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteSelector {
    /// The methods taken (`*` for all).
    pub method: MethodPattern,
    /// The paths taken; `None` for all.
    pub path: Option<PathRegex>,
}

/// What a route does with the waves it takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RouteBody {
    /// `-> … => &;`: one pipeline for every wave the route takes.
    Pipeline(Pipeline),
    /// `-> { … }`: lines tried in order; each narrows the route's selector.
    Block(Vec<BlockLine>),
}

/// One line of a block: `Cmd<Read> -> (()) => &;`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockLine {
    /// Which waves, among those the route takes, the line takes.
    pub selector: RouteSelector,
    /// What to do with them.
    pub pipeline: Pipeline,
}

/// The outcome of [`Bind::select`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<'a> {
    /// A route matched: its pipeline, and the variables its path regexes captured.
    Route {
        /// The pipeline to run.
        pipeline: &'a Pipeline,
        /// The named captures of the route's (and the line's) path regexes.
        vars: Env,
    },
    /// No route matched a `Cmd<…>` wave: it gets [`Pipeline::default_pipeline`].
    Default,
    /// No route matched: the wave is answered 404 "no route".
    NoRoute,
}

impl Selection<'_> {
    /// The pipeline to run, or `None` when there is no route.
    pub fn pipeline(&self) -> Option<&Pipeline> {
        match self {
            Selection::Route { pipeline, .. } => Some(pipeline),
            Selection::Default => Some(Pipeline::default_pipeline()),
            Selection::NoRoute => None,
        }
    }
}

impl RouteSelector {
    /// Whether the selector takes `method` at `path`; on a match, the captures of its path
    /// regex are set in `vars`.
    fn matches(&self, method: &Method, path: &str, vars: &mut Env) -> bool {
        self.method.matches(method)
            && self
                .path
                .as_ref()
                .is_none_or(|regex| regex.capture_into(path, vars))
    }

    fn capture_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.path.iter().flat_map(PathRegex::capture_names)
    }
}

impl Bind {
    /// The most path regexes one bind may hold, so that a hostile bind cannot make the Field
    /// compile regexes without end (each is bounded by [`PathRegex::SIZE_LIMIT`]).
    pub const MAX_PATH_REGEXES: usize = 128;

    /// Selects the pipeline for a wave of `method` to `path`: the first route that matches
    /// wins; without one, `Cmd<…>` waves get the default pipeline and others no route.
    pub fn select(&self, method: &Method, path: &str) -> Selection<'_> {
        for route in &self.routes {
            let mut vars = Env::new();
            if !route.selector.matches(method, path, &mut vars) {
                continue;
            }
            match &route.body {
                RouteBody::Pipeline(pipeline) => return Selection::Route { pipeline, vars },
                RouteBody::Block(lines) => {
                    for line in lines {
                        let mut line_vars = vars.clone();
                        if line.selector.matches(method, path, &mut line_vars) {
                            return Selection::Route {
                                pipeline: &line.pipeline,
                                vars: line_vars,
                            };
                        }
                    }
                }
            }
        }
        if method.kind() == MethodKind::Cmd {
            Selection::Default
        } else {
            Selection::NoRoute
        }
    }

    /// Parses a bind document at the cursor, with any white space and comments around it.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Bind, ParseError> {
        c.skip_ws_and_comments();
        let version = parse_header(c, "Bind")?;
        c.skip_ws_and_comments();
        let open = c.pos();
        c.expect("{", "'{' to open the bind's routes")?;
        let mut routes = Vec::new();
        let mut regexes = 0;
        loop {
            c.skip_ws_and_comments();
            if c.eat_char('}') {
                break;
            }
            if c.at_end() {
                return Err(unclosed(c, "'Route' or '}'", "bind", open));
            }
            if !keyword_at(c, "Route") {
                let at = c.pos();
                let word = c.clone().take_while(|ch| ch.is_ascii_alphanumeric()).len();
                return Err(c.error_span(
                    Span::new(at, at + word),
                    "expected 'Route' or '}' to close the bind",
                ));
            }
            routes.push(parse_route(c, &mut regexes)?);
        }
        c.skip_ws_and_comments();
        Ok(Bind { version, routes })
    }
}

/// `Keyword(version=X.Y.Z)`, the header of bind and mechtron documents; only version 1.x.y
/// is read.
pub(crate) fn parse_header(c: &mut Cursor<'_>, keyword: &str) -> Result<Version, ParseError> {
    if !keyword_at(c, keyword) {
        return Err(c.error(format!(
            "expected '{keyword}(version=1.0.0)' to begin the document"
        )));
    }
    c.eat(keyword);
    c.expect("(", "'(version=…)' after the document's name")?;
    c.skip_ws();
    c.expect("version", "'version='")?;
    c.skip_ws();
    c.expect("=", "'=' after 'version'")?;
    c.skip_ws();
    let at = c.pos();
    let version = parse_version(c)?;
    if version.major != 1 {
        return Err(c.error_span(
            Span::new(at, c.pos()),
            format!("unsupported {keyword} version {version}: this Starlane reads version 1.x.y"),
        ));
    }
    c.skip_ws();
    c.expect(")", "')' to close the header")?;
    Ok(version)
}

/// Whether `word` stands at the cursor as a whole word.
pub(crate) fn keyword_at(c: &Cursor<'_>, word: &str) -> bool {
    c.rest()
        .strip_prefix(word)
        .is_some_and(|after| !after.starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '_'))
}

/// "expected X to close the Y opened at L:C", at the cursor (the end of the input).
pub(crate) fn unclosed(c: &Cursor<'_>, expected: &str, what: &str, open: usize) -> ParseError {
    let (line, col) = line_col(c.input(), open);
    c.error(format!(
        "expected {expected} to close the {what} opened at {line}:{col}"
    ))
}

fn parse_route(c: &mut Cursor<'_>, regexes: &mut usize) -> Result<Route, ParseError> {
    c.eat("Route");
    let method = if c.eat_char('<') {
        let method = MethodPattern::parse(c)?;
        c.expect(">", "'>' to close 'Route<…>'")?;
        method
    } else {
        MethodPattern::Any
    };
    let path = parse_path(c, regexes)?;
    let selector = RouteSelector { method, path };
    let after_selector = c.pos();
    c.skip_ws_and_comments();
    if c.peek() == Some('{') {
        let body = parse_block(c, &selector, regexes)?;
        return Ok(Route { selector, body });
    }
    if !(c.starts_with("->") || c.starts_with("-[") || c.starts_with("=")) {
        if c.peek() == Some('/') && c.pos() > after_selector {
            return Err(
                c.error("a path regex follows the method selector directly, without white space")
            );
        }
        if selector.path.is_some() && c.pos() > after_selector {
            return Err(c.error(
                "expected '->' and a pipeline, or '{' and a block of lines (a path regex ends at \
                 the first white space: write \\s or %20 for a space)",
            ));
        }
        return Err(c.error("expected '->' and a pipeline, or '{' and a block of lines"));
    }
    let request = pipeline::parse_directed_step(c)?;
    c.skip_ws_and_comments();
    if c.peek() == Some('{') {
        if request.is_some() {
            return Err(c.error(
                "a block follows a plain '->': put substance filters on the block's lines",
            ));
        }
        let body = parse_block(c, &selector, regexes)?;
        return Ok(Route { selector, body });
    }
    let pipeline = parse_pipeline_rest(c, request, &selector, None)?;
    Ok(Route {
        selector,
        body: RouteBody::Pipeline(pipeline),
    })
}

/// An optional path regex directly after a method selector.
fn parse_path(c: &mut Cursor<'_>, regexes: &mut usize) -> Result<Option<PathRegex>, ParseError> {
    match c.peek() {
        Some('/') => {
            *regexes += 1;
            if *regexes > Bind::MAX_PATH_REGEXES {
                return Err(c.error(format!(
                    "a bind may hold at most {} path regexes",
                    Bind::MAX_PATH_REGEXES
                )));
            }
            PathRegex::parse(c).map(Some)
        }
        Some(ch) if !ch.is_whitespace() && !matches!(ch, '-' | '{' | '#' | '=') => Err(c.error(
            "expected a path regex beginning with '/', white space, '->' or '{' after the method \
             selector",
        )),
        _ => Ok(None),
    }
}

/// The rest of a pipeline after its directed step, its variables checked against what the
/// selectors capture, and the `;` after it.
fn parse_pipeline_rest(
    c: &mut Cursor<'_>,
    request: Option<pipeline::Filter>,
    outer: &RouteSelector,
    line: Option<&RouteSelector>,
) -> Result<Pipeline, ParseError> {
    let stop_at = c.pos();
    let pipeline = Pipeline::parse_after_step(c, request)?;
    let captured: BTreeSet<&str> = outer
        .capture_names()
        .chain(line.into_iter().flat_map(RouteSelector::capture_names))
        .collect();
    for var in pipeline.stop.vars() {
        if !captured.contains(var) {
            let needle = format!("${{{var}}}");
            let at = c.input()[stop_at..c.pos()]
                .find(&needle)
                .map_or(stop_at, |i| stop_at + i);
            let known = if captured.is_empty() {
                "the route's path regex captures no variables".to_string()
            } else {
                format!(
                    "the route's path regexes capture {}",
                    captured.iter().copied().collect::<Vec<_>>().join(", ")
                )
            };
            return Err(c.error_span(
                Span::new(at, at + needle.len()),
                format!("unknown variable '{needle}': {known}"),
            ));
        }
    }
    let end = c.pos();
    c.skip_ws_and_comments();
    if !c.eat_char(';') {
        return Err(c.error_at(end, "expected ';' after the pipeline"));
    }
    Ok(pipeline)
}

fn parse_block(
    c: &mut Cursor<'_>,
    outer: &RouteSelector,
    regexes: &mut usize,
) -> Result<RouteBody, ParseError> {
    let open = c.pos();
    c.expect("{", "'{'")?;
    let mut lines = Vec::new();
    loop {
        c.skip_ws_and_comments();
        if c.eat_char('}') {
            break;
        }
        if c.at_end() {
            return Err(unclosed(c, "a line or '}'", "block", open));
        }
        if keyword_at(c, "Route") {
            return Err(c.error(
                "blocks do not nest: a line is 'MethodPattern [path-regex] pipeline;' (or '}' \
                 to close the block)",
            ));
        }
        let at = c.pos();
        let method = MethodPattern::parse(c)?;
        if !overlaps(&outer.method, &method) {
            return Err(c.error_span(
                Span::new(at, c.pos()),
                format!(
                    "this line can never match: {method} is not within the route's {}",
                    outer.method
                ),
            ));
        }
        let path = parse_path(c, regexes)?;
        let selector = RouteSelector { method, path };
        c.skip_ws_and_comments();
        let request = pipeline::parse_directed_step(c)?;
        c.skip_ws_and_comments();
        if c.peek() == Some('{') {
            return Err(c.error("blocks do not nest: expected a pipeline"));
        }
        let pipeline = parse_pipeline_rest(c, request, outer, Some(&selector))?;
        lines.push(BlockLine { selector, pipeline });
    }
    let end = c.pos();
    c.skip_ws_and_comments();
    if c.peek() == Some(';') {
        return Err(c.error_at(end, "a block ends with '}' and takes no ';'"));
    }
    Ok(RouteBody::Block(lines))
}

/// Whether some method matches both patterns.
fn overlaps(a: &MethodPattern, b: &MethodPattern) -> bool {
    match (a, b) {
        (MethodPattern::Any, _) | (_, MethodPattern::Any) => true,
        (MethodPattern::Kind(x), MethodPattern::Kind(y)) => x == y,
        (MethodPattern::Kind(kind), MethodPattern::Exact(m))
        | (MethodPattern::Exact(m), MethodPattern::Kind(kind)) => m.kind() == *kind,
        (MethodPattern::Exact(x), MethodPattern::Exact(y)) => x == y,
    }
}

impl fmt::Display for RouteSelector {
    /// The selector as a block line writes it (`Cmd<Read>/path`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.method)?;
        match &self.path {
            Some(path) => write!(f, "{path}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Route")?;
        if self.selector.method != MethodPattern::Any {
            write!(f, "<{}>", self.selector.method)?;
        }
        if let Some(path) = &self.selector.path {
            write!(f, "{path}")?;
        }
        match &self.body {
            RouteBody::Pipeline(pipeline) => write!(f, " {pipeline};"),
            RouteBody::Block(lines) => {
                f.write_str(" -> {\n")?;
                for line in lines {
                    writeln!(f, "    {} {};", line.selector, line.pipeline)?;
                }
                f.write_str("  }")
            }
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Bind(version={}) {{", self.version)?;
        for route in &self.routes {
            writeln!(f, "  {route}")?;
        }
        f.write_str("}")
    }
}

impl FromStr for Bind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("bind", s, Bind::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::substance::SubstanceKind;

    const SPEC_EXAMPLE: &str = "\
# comments run to the end of the line
Bind(version=1.0.0) {
  Route<Ext<Hello>> -> (()) => &;
  Route<Http<Get>>/static/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
  Route<Http<*>>/app/(?P<rest>.*) -> localhost:my-app^Http<Get>/${rest} => &;
  Route -> {
     Cmd<Read> -> (()) => &;
     Ext<*> -[ Text ]-> (()) =[ Text ]=> &;
  }
}
";

    fn bind(s: &str) -> Bind {
        s.parse().unwrap_or_else(|e| panic!("{s}\n{e}"))
    }

    fn method(s: &str) -> Method {
        s.parse().unwrap_or_else(|e| panic!("{s}\n{e}"))
    }

    fn err(s: &str) -> ParseError {
        match s.parse::<Bind>() {
            Ok(b) => panic!("{s} parsed as {b}"),
            Err(e) => e,
        }
    }

    /// The selected pipeline as text, with the captured variables named in `names`.
    fn select(bind: &Bind, m: &str, path: &str, names: &[&str]) -> String {
        match bind.select(&method(m), path) {
            Selection::Route { pipeline, vars } => {
                let vars: Vec<String> = names
                    .iter()
                    .map(|n| format!("{n}={}", vars.var(n).unwrap_or("<unset>")))
                    .collect();
                format!("{pipeline} {}", vars.join(" "))
                    .trim_end()
                    .to_string()
            }
            Selection::Default => "default".to_string(),
            Selection::NoRoute => "no route".to_string(),
        }
    }

    #[test]
    fn the_spec_example_parses_and_prints_canonically() {
        let b = bind(SPEC_EXAMPLE);
        assert_eq!(b.version, Version::new(1, 0, 0));
        assert_eq!(b.routes.len(), 4);
        assert_eq!(
            b.to_string(),
            "\
Bind(version=1.0.0) {
  Route<Ext<Hello>> -> (()) => &;
  Route<Http<Get>>/static/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
  Route<Http<*>>/app/(?P<rest>.*) -> localhost:my-app^Http<Get>/${rest} => &;
  Route -> {
    Cmd<Read> -> (()) => &;
    Ext<*> -[ Text ]-> (()) =[ Text ]=> &;
  }
}"
        );
        assert_eq!(bind(&b.to_string()), b);
    }

    #[test]
    fn the_spec_example_selects_routes() {
        let b = bind(SPEC_EXAMPLE);
        assert_eq!(select(&b, "Ext<Hello>", "/", &[]), "-> (()) => &");
        assert_eq!(
            select(&b, "Http<Get>", "/static/a/b.css", &["path"]),
            "-> localhost:repo:site:1.0.0:/html/${path} => & path=a/b.css"
        );
        assert_eq!(
            select(&b, "Http<Post>", "/app/x", &["rest"]),
            "-> localhost:my-app^Http<Get>/${rest} => & rest=x"
        );
        assert_eq!(select(&b, "Cmd<Read>", "/", &[]), "-> (()) => &");
        assert!(matches!(
            b.select(&method("Cmd<Read>"), "/"),
            Selection::Route { pipeline, .. } if std::ptr::eq(pipeline, match &b.routes[3].body {
                RouteBody::Block(lines) => &lines[0].pipeline,
                RouteBody::Pipeline(p) => p,
            })
        ));
        assert_eq!(
            select(&b, "Ext<Other>", "/", &[]),
            "-[ Text ]-> (()) =[ Text ]=> &"
        );
        assert_eq!(select(&b, "Http<Get>", "/nope", &[]), "no route");
        assert_eq!(b.select(&method("Http<Get>"), "/nope").pipeline(), None);
        assert_eq!(select(&b, "Cmd<Update>", "/", &[]), "default");
        assert_eq!(
            b.select(&method("Cmd<Update>"), "/").pipeline(),
            Some(Pipeline::default_pipeline())
        );
        assert_eq!(select(&b, "Hyp<Assign>", "/", &[]), "no route");
    }

    #[test]
    fn a_path_regex_matches_the_whole_path() {
        let b = bind("Bind(version=1.0.0) { Route<Http<Get>>/static -> (()) => &; }");
        assert_eq!(select(&b, "Http<Get>", "/static", &[]), "-> (()) => &");
        assert_eq!(select(&b, "Http<Get>", "/staticx/a", &[]), "no route");
        assert_eq!(select(&b, "Http<Get>", "/static/a", &[]), "no route");
        assert_eq!(select(&b, "Http<Get>", "/x/static", &[]), "no route");
        let prefix = bind("Bind(version=1.0.0) { Route<Http<Get>>/static.* -> (()) => &; }");
        assert_eq!(
            select(&prefix, "Http<Get>", "/staticx/a", &[]),
            "-> (()) => &"
        );
    }

    #[test]
    fn the_first_matching_route_wins_and_blocks_fall_through() {
        let b = bind(
            "Bind(version=1.0.0) {
               Route<Http<*>>/api/(?P<v>v[0-9]+)/.* -> {
                 Http<Get>/api/v1/(?P<rest>.*) -> localhost:one^Http<Get>/${v}/${rest} => &;
                 Http<Post> -> localhost:two => &;
               }
               Route/api/(?P<tail>.*) -> localhost:three^Ext<Fallback>/${tail} => &;
               Route -> localhost:four => &;
             }",
        );
        assert_eq!(
            select(&b, "Http<Get>", "/api/v1/a/b", &["v", "rest"]),
            "-> localhost:one^Http<Get>/${v}/${rest} => & v=v1 rest=a/b"
        );
        assert_eq!(
            select(&b, "Http<Post>", "/api/v7/x", &["v", "rest"]),
            "-> localhost:two => & v=v7 rest=<unset>"
        );
        // In the block but matched by no line: on to the next route.
        assert_eq!(
            select(&b, "Http<Get>", "/api/v2/a", &["tail", "v"]),
            "-> localhost:three^Ext<Fallback>/${tail} => & tail=v2/a v=<unset>"
        );
        assert_eq!(
            select(&b, "Cmd<Update>", "/other", &[]),
            "-> localhost:four => &"
        );
    }

    #[test]
    fn filters_are_read_from_the_selected_pipeline() {
        let b = bind(SPEC_EXAMPLE);
        let pipeline = b.select(&method("Ext<Other>"), "/").pipeline().cloned();
        let pipeline = pipeline.unwrap_or_else(|| panic!("no pipeline"));
        assert_eq!(pipeline.check_request(SubstanceKind::Text), Ok(()));
        assert!(pipeline.check_request(SubstanceKind::Bin).is_err());
        assert!(pipeline.check_reflection(SubstanceKind::Json).is_err());
    }

    #[test]
    fn errors_point_at_the_line_and_column() {
        let cases: &[(&str, (usize, usize), &str)] = &[
            (
                "Bind(version=1.0.0) {\n  Route/a/( -> (()) => &;\n}",
                (2, 11),
                "invalid path regex: unclosed group",
            ),
            (
                "Bind(version=1.0.0) {\n  Route -> (()) => &\n  Route -> (()) => &;\n}",
                (2, 21),
                "expected ';' after the pipeline",
            ),
            (
                "Bind(version=1.0.0) {\n  Route<Http<Fetch>> -> (()) => &;\n}",
                (2, 14),
                "unknown Http method",
            ),
            (
                "Bind(version=2.0.0) {}",
                (1, 14),
                "unsupported Bind version 2.0.0",
            ),
            (
                "Bind(version=1.0.0) {\n  Route -> {\n    Cmd<Read> -> (()) => &;\n",
                (4, 1),
                "expected a line or '}' to close the block opened at 2:12",
            ),
            (
                "Bind(version=1.0.0) {\n  Route<Http<Get>>/s/(?P<p>.*) -> localhost:a:/${q} => &;\n}",
                (2, 48),
                "unknown variable '${q}': the route's path regexes capture p",
            ),
            (
                "Bind(version=1.0.0) {\n  Route<Http<*>> -> {\n    Ext<Hello> -> (()) => &;\n  }\n}",
                (3, 5),
                "this line can never match: Ext<Hello> is not within the route's Http<*>",
            ),
            (
                "Bind(version=1.0.0) {\n  Route<Http<Get>> /x -> (()) => &;\n}",
                (2, 20),
                "a path regex follows the method selector directly",
            ),
            (
                "Bind(version=1.0.0) {\n  Route -> { Cmd<Read> -> (()) => &; };\n}",
                (2, 39),
                "a block ends with '}' and takes no ';'",
            ),
            (
                "Bind(version=1.0.0) {\n  Rout -> (()) => &;\n}",
                (2, 3),
                "expected 'Route' or '}'",
            ),
            (
                "Bind(version=1.0.0) {",
                (1, 22),
                "expected 'Route' or '}' to close the bind opened at 1:21",
            ),
            (
                "Bind(version=1.0.0) {} x",
                (1, 24),
                "unexpected input after bind",
            ),
            (
                "Bnd(version=1.0.0) {}",
                (1, 1),
                "expected 'Bind(version=1.0.0)'",
            ),
        ];
        for (input, at, message) in cases {
            let e = err(input);
            assert_eq!(e.line_col(), *at, "{input}\n{e}");
            assert!(e.message.contains(message), "{input}\n{e}");
        }
    }

    #[test]
    fn a_block_may_open_with_or_without_an_arrow() {
        let with = bind("Bind(version=1.0.0) { Route { Cmd<Read> -> (()) => &; } }");
        let without = bind("Bind(version=1.0.0) { Route -> { Cmd<Read> -> (()) => &; } }");
        assert_eq!(with, without);
        assert_eq!(bind("Bind(version=1.0.0){}").routes, []);
        assert_eq!(
            bind("Bind(version=1.0.0){}").to_string(),
            "Bind(version=1.0.0) {\n}"
        );
    }

    #[test]
    fn too_many_path_regexes_are_refused() {
        let routes = "Route/a -> (()) => &;\n".repeat(Bind::MAX_PATH_REGEXES);
        bind(&format!("Bind(version=1.0.0) {{\n{routes}}}"));
        let e = err(&format!(
            "Bind(version=1.0.0) {{\n{routes}Route/b -> (()) => &;\n}}"
        ));
        assert_eq!(e.line_col(), (Bind::MAX_PATH_REGEXES + 2, 6));
    }

    #[test]
    fn binds_cross_the_wire() {
        let b = bind(SPEC_EXAMPLE);
        let json = serde_json::to_string(&b).unwrap_or_default();
        let back: Bind = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}\n{json}"));
        assert_eq!(back, b);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&b, config).unwrap_or_default();
        let (back, _): (Bind, usize) =
            bincode::serde::decode_from_slice(&bytes, config).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, b);
        assert_eq!(
            select(&back, "Http<Get>", "/static/x", &["path"]),
            "-> localhost:repo:site:1.0.0:/html/${path} => & path=x"
        );
    }
}
