//! Pipelines: what the Field does with a wave once a route selected it (SPEC §7).
//!
//! ```text
//! pipeline       := directed-step stop reflected-step "&"
//! directed-step  := "->" | "-[" Kind "]->"
//! reflected-step := "=>" | "=[" Kind "]=>"
//! stop           := "(())" | point-var [ "^" Method [ path-template ] ]
//! ```
//!
//! A pipeline carries the directed wave to one stop and its reflection back to the sender: one
//! hop out, one hop back. White space and `#` comments may stand between the parts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::path::PathTemplate;
use crate::method::Method;
use crate::point::{Env, Lead, Point, PointError, PointVar, VarSeg};
use crate::substance::SubstanceKind;
use crate::syntax::{Cursor, ParseError, Span};

/// A substance filter on a step (`-[ Text ]->`, `=[ Text ]=>`): the body must be of this kind,
/// else the wave is answered 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Filter(pub SubstanceKind);

impl Filter {
    /// Passes when a body of kind `kind` may take the step.
    pub fn check(&self, kind: SubstanceKind) -> Result<(), FilterError> {
        if self.0 == kind {
            Ok(())
        } else {
            Err(FilterError {
                expected: self.0,
                found: kind,
            })
        }
    }
}

/// A body refused by a [`Filter`]; the Field answers it with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected a body of kind {expected}, found {found}")]
pub struct FilterError {
    /// The kind the filter lets through.
    pub expected: SubstanceKind,
    /// The kind the body had.
    pub found: SubstanceKind,
}

/// Where a pipeline carries the directed wave.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stop {
    /// `(())`: this particle's own Core.
    Core,
    /// `point`: another particle, which gets the wave as it is (method, path, body); its answer
    /// is adopted.
    Forward(PointVar),
    /// `point^Method/path`: another particle, called with a new method and (when written) a new
    /// path; without a path the wave's own path is kept.
    Call {
        /// The particle to call.
        point: PointVar,
        /// The method of the call.
        method: Method,
        /// The path of the call, if it is to change.
        path: Option<PathTemplate>,
    },
}

impl Stop {
    /// The variables the stop uses, in order (a name may repeat).
    pub fn vars(&self) -> Vec<&str> {
        match self {
            Stop::Core => Vec::new(),
            Stop::Forward(point) => point_vars(point),
            Stop::Call { point, path, .. } => {
                let mut vars = point_vars(point);
                vars.extend(path.iter().flat_map(PathTemplate::vars));
                vars
            }
        }
    }

    /// Resolves the stop's points and path against `env` (the working point is the particle
    /// the bind belongs to; the variables are what the route captured).
    pub fn resolve(&self, env: &Env) -> Result<Destination, PointError> {
        Ok(match self {
            Stop::Core => Destination::Core,
            Stop::Forward(point) => Destination::Forward(point.resolve(env)?),
            Stop::Call {
                point,
                method,
                path,
            } => Destination::Call {
                point: point.resolve(env)?,
                method: method.clone(),
                path: path.as_ref().map(|p| p.resolve(env)).transpose()?,
            },
        })
    }

    fn parse(c: &mut Cursor<'_>) -> Result<Stop, ParseError> {
        if c.starts_with("(") {
            if c.eat("(())") {
                return Ok(Stop::Core);
            }
            return Err(c.error("expected '(())' (this particle's core)"));
        }
        if c.starts_with("&") {
            return Err(c.error(
                "'&' reflects a result back to the sender, so it follows '=>': expected '(())', \
                 a point or point^Method/path after '->'",
            ));
        }
        if !begins_point(c) {
            return Err(c.error(
                "expected a stop after '->': '(())' (this particle's core), a point, or \
                 point^Method/path",
            ));
        }
        let point = PointVar::parse(c)?;
        if !c.eat_char('^') {
            return Ok(Stop::Forward(point));
        }
        let method = Method::parse(c)?;
        let path = if c.peek() == Some('/') {
            Some(PathTemplate::parse(c)?)
        } else {
            None
        };
        Ok(Stop::Call {
            point,
            method,
            path,
        })
    }
}

/// Whether a point-var can begin here: a space, a route, `ROOT`, `.`, `..` or `${var}`.
fn begins_point(c: &Cursor<'_>) -> bool {
    c.peek()
        .is_some_and(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ".$[<".contains(ch))
        || ["GLOBAL::", "LOCAL::", "REMOTE::", "ROOT"]
            .iter()
            .any(|word| c.starts_with(word))
}

/// The variables a point-var uses, in order.
pub(crate) fn point_vars(point: &PointVar) -> Vec<&str> {
    let lead = match point.lead() {
        Lead::Var(name) => Some(name.as_str()),
        _ => None,
    };
    lead.into_iter()
        .chain(point.tail().iter().filter_map(|seg| match seg {
            VarSeg::Var(name) | VarSeg::FsVar { name, .. } => Some(name.as_str()),
            VarSeg::Seg(_) => None,
        }))
        .collect()
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Core => f.write_str("(())"),
            Stop::Forward(point) => write!(f, "{point}"),
            Stop::Call {
                point,
                method,
                path,
            } => {
                write!(f, "{point}^{method}")?;
                match path {
                    Some(path) => write!(f, "{path}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A [`Stop`] with its variables resolved: where the Field sends the wave.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Destination {
    /// This particle's own Core.
    Core,
    /// Another particle, with the wave as it is.
    Forward(Point),
    /// Another particle, with a new method and maybe a new path.
    Call {
        /// The particle to call.
        point: Point,
        /// The method of the call.
        method: Method,
        /// The new path; `None` keeps the wave's own.
        path: Option<String>,
    },
}

/// What to do with a wave: carry it (through an optional filter) to a stop, and carry the
/// stop's reflection (through an optional filter) back to the sender — `-> (()) => &`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pipeline {
    /// The filter on the directed step (`-[ Kind ]->`), if any.
    pub request: Option<Filter>,
    /// Where the directed wave goes.
    pub stop: Stop,
    /// The filter on the reflected step (`=[ Kind ]=>`), if any.
    pub reflection: Option<Filter>,
}

/// `-> (()) => &`, what `Cmd<…>` waves get when no route matches them.
static DEFAULT_PIPELINE: Pipeline = Pipeline {
    request: None,
    stop: Stop::Core,
    reflection: None,
};

impl Pipeline {
    /// The default pipeline `-> (()) => &`: deliver to this particle's Core and reflect its
    /// answer. `Cmd<…>` waves that no route matches get it.
    pub fn default_pipeline() -> &'static Pipeline {
        &DEFAULT_PIPELINE
    }

    /// Checks the directed wave's body against the directed step's filter.
    pub fn check_request(&self, kind: SubstanceKind) -> Result<(), FilterError> {
        self.request.map_or(Ok(()), |filter| filter.check(kind))
    }

    /// Checks the reflection's body against the reflected step's filter.
    pub fn check_reflection(&self, kind: SubstanceKind) -> Result<(), FilterError> {
        self.reflection.map_or(Ok(()), |filter| filter.check(kind))
    }

    /// Parses a whole pipeline at the cursor, from its directed step to its `&`.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Pipeline, ParseError> {
        let request = parse_directed_step(c)?;
        c.skip_ws_and_comments();
        Pipeline::parse_after_step(c, request)
    }

    /// Parses the rest of a pipeline whose directed step (with `request` as its filter) has
    /// been read, white space after it skipped.
    pub(crate) fn parse_after_step(
        c: &mut Cursor<'_>,
        request: Option<Filter>,
    ) -> Result<Pipeline, ParseError> {
        let stop = Stop::parse(c)?;
        c.skip_ws_and_comments();
        let reflection = if c.starts_with("=>") || c.starts_with("=[") {
            parse_step(c, '=')?
        } else if c.starts_with("->") || c.starts_with("-[") {
            return Err(c.error(
                "a pipeline has one directed hop: expected '=>' or '=[ Kind ]=>' to carry the \
                 reflection back",
            ));
        } else {
            return Err(c.error("expected '=>' and '&' to reflect the result back to the sender"));
        };
        c.skip_ws_and_comments();
        if !c.eat_char('&') {
            return Err(
                c.error("expected '&': a pipeline ends by reflecting the result to the sender")
            );
        }
        Ok(Pipeline {
            request,
            stop,
            reflection,
        })
    }
}

/// `->` or `-[ Kind ]->`, returning the filter.
pub(crate) fn parse_directed_step(c: &mut Cursor<'_>) -> Result<Option<Filter>, ParseError> {
    if c.starts_with("=>") || c.starts_with("=[") {
        return Err(c.error(
            "a pipeline starts with a directed step '->' (or '-[ Kind ]->'); '=>' carries the \
             reflection back",
        ));
    }
    if !(c.starts_with("->") || c.starts_with("-[")) {
        return Err(c.error("expected '->' (or '-[ Kind ]->') to begin the pipeline"));
    }
    parse_step(c, '-')
}

/// A step of direction `dash` (`-` directed, `=` reflected): `d>` or `d[ Kind ]d>`.
fn parse_step(c: &mut Cursor<'_>, dash: char) -> Result<Option<Filter>, ParseError> {
    let arrow = format!("{dash}>");
    if c.eat(&arrow) {
        return Ok(None);
    }
    let open = c.pos();
    c.expect(&format!("{dash}["), &format!("'{arrow}'"))?;
    c.skip_ws();
    let kind = SubstanceKind::parse(c)?;
    c.skip_ws();
    let close = format!("]{dash}>");
    if !c.eat(&close) {
        let (line, col) = crate::syntax::line_col(c.input(), open);
        return Err(c.error_span(
            Span::at(c.pos()),
            format!("expected '{close}' to close the filter opened at {line}:{col}"),
        ));
    }
    Ok(Some(Filter(kind)))
}

fn write_step(f: &mut fmt::Formatter<'_>, dash: char, filter: Option<Filter>) -> fmt::Result {
    match filter {
        None => write!(f, "{dash}>"),
        Some(Filter(kind)) => write!(f, "{dash}[ {kind} ]{dash}>"),
    }
}

impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_step(f, '-', self.request)?;
        write!(f, " {} ", self.stop)?;
        write_step(f, '=', self.reflection)?;
        f.write_str(" &")
    }
}

impl FromStr for Pipeline {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("pipeline", s, |c| {
            c.skip_ws_and_comments();
            let pipeline = Pipeline::parse(c)?;
            c.skip_ws_and_comments();
            Ok(pipeline)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pipeline {
        s.parse().unwrap_or_else(|e| panic!("{s}:\n{e}"))
    }

    fn err(s: &str) -> ParseError {
        match s.parse::<Pipeline>() {
            Ok(p) => panic!("{s} parsed as {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn pipelines_round_trip() {
        for s in [
            "-> (()) => &",
            "-[ Text ]-> (()) =[ Text ]=> &",
            "-> localhost:repo:site:1.0.0:/html/${path} => &",
            "-> localhost:my-app^Http<Get>/${rest} => &",
            "-> localhost:my-app^Ext<Hello> => &",
            "-> .:child^Cmd<Read>/a/b => &",
            "-> GLOBAL::registry => &",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(p("->(())=>&").to_string(), "-> (()) => &");
        assert_eq!(
            p("-[Bin]-> # to the core\n (()) =>&").to_string(),
            "-[ Bin ]-> (()) => &"
        );
    }

    #[test]
    fn the_parts_are_what_they_say() {
        let call = p("-> localhost:my-app^Http<Get>/${rest} =[ Text ]=> &");
        assert_eq!(call.request, None);
        assert_eq!(call.reflection, Some(Filter(SubstanceKind::Text)));
        let Stop::Call {
            point,
            method,
            path,
        } = &call.stop
        else {
            panic!("{call:?}")
        };
        assert_eq!(point.to_string(), "localhost:my-app");
        assert_eq!(method.to_string(), "Http<Get>");
        assert_eq!(
            path.as_ref().map(ToString::to_string).as_deref(),
            Some("/${rest}")
        );
        assert_eq!(call.stop.vars(), ["rest"]);
        assert_eq!(p("-> (()) => &"), *Pipeline::default_pipeline());
    }

    #[test]
    fn bad_shapes_are_refused_where_they_go_wrong() {
        let e = err("=> (()) => &");
        assert_eq!(
            (
                e.span.start,
                e.message.contains("starts with a directed step")
            ),
            (0, true)
        );
        let e = err("-> & ");
        assert_eq!(e.span.start, 3);
        assert!(e.message.contains("follows '=>'"), "{}", e.message);
        let e = err("-> (()) -> (()) => &");
        assert_eq!(e.span.start, 8);
        assert!(e.message.contains("one directed hop"), "{}", e.message);
        let e = err("-> (()) => (())");
        assert_eq!(
            (e.span.start, e.message.starts_with("expected '&'")),
            (11, true)
        );
        let e = err("-> ((x)) => &");
        assert_eq!(
            (e.span.start, e.message.as_str()),
            (3, "expected '(())' (this particle's core)")
        );
        let e = err("-> Foo => &");
        assert_eq!(e.span.start, 3);
        assert!(e.message.starts_with("expected a stop"), "{}", e.message);
        let e = err("-[ Txt ]-> (()) => &");
        assert_eq!(e.span, Span::new(3, 6));
        let e = err("-[ Text ]=> (()) => &");
        assert_eq!(e.span.start, 8);
        assert!(
            e.message
                .contains("']->' to close the filter opened at 1:1"),
            "{}",
            e.message
        );
        let e = err("-> localhost^Http<Fetch> => &");
        assert_eq!(e.span, Span::new(18, 23));
        let e = err("-> (()) &");
        assert!(e.message.contains("expected '=>'"), "{}", e.message);
    }

    #[test]
    fn filters_check_the_kind_of_the_body() {
        let filtered = p("-[ Text ]-> (()) =[ Json ]=> &");
        assert_eq!(filtered.check_request(SubstanceKind::Text), Ok(()));
        assert_eq!(
            filtered.check_request(SubstanceKind::Bin),
            Err(FilterError {
                expected: SubstanceKind::Text,
                found: SubstanceKind::Bin
            })
        );
        assert_eq!(filtered.check_reflection(SubstanceKind::Json), Ok(()));
        assert!(filtered.check_reflection(SubstanceKind::Text).is_err());
        let open = p("-> (()) => &");
        assert_eq!(open.check_request(SubstanceKind::Bin), Ok(()));
        assert_eq!(open.check_reflection(SubstanceKind::Empty), Ok(()));
        assert_eq!(
            Filter(SubstanceKind::Text)
                .check(SubstanceKind::Empty)
                .unwrap_err()
                .to_string(),
            "expected a body of kind Text, found Empty"
        );
    }

    #[test]
    fn stops_resolve_against_the_captured_variables() {
        let env = Env::new()
            .with_working("localhost:site".parse().unwrap())
            .with_var("path", "css/a.css")
            .with_var("rest", "x/y");
        let forward = p("-> localhost:repo:site:1.0.0:/html/${path} => &");
        assert_eq!(
            forward.stop.resolve(&env).unwrap(),
            Destination::Forward("localhost:repo:site:1.0.0:/html/css/a.css".parse().unwrap())
        );
        let call = p("-> .:app^Http<Post>/api/${rest} => &");
        assert_eq!(
            call.stop.resolve(&env).unwrap(),
            Destination::Call {
                point: "localhost:site:app".parse().unwrap(),
                method: "Http<Post>".parse().unwrap(),
                path: Some("/api/x/y".to_string()),
            }
        );
        assert_eq!(
            call.stop
                .resolve(&Env::new().with_working("localhost".parse().unwrap())),
            Err(PointError::MissingVariable("rest".into()))
        );
        assert_eq!(
            p("-> (()) => &").stop.resolve(&Env::new()),
            Ok(Destination::Core)
        );
    }
}
