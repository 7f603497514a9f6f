//! Points with variables and relative beginnings (SPEC §2.2), and their resolution.
//!
//! ```
//! use cosmic_space::{Env, Point, PointVar};
//!
//! let var: PointVar = "..:${name}:/html/${path}".parse()?;
//! let env = Env::new()
//!     .with_working("localhost:sites:old".parse()?)
//!     .with_var("name", "blog")
//!     .with_var("path", "css/site.css");
//! let point: Point = var.resolve(&env)?;
//! assert_eq!(point.to_string(), "localhost:sites:blog:/html/css/site.css");
//! # Ok::<(), cosmic_space::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Point, PointError, PointSeg, RouteSeg, parse_domain, parse_route, parse_version, write_segments,
};
use crate::syntax::{Cursor, ParseError, Span};

/// How a [`PointVar`] begins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lead {
    /// `ROOT`.
    Root,
    /// A space, as in an ordinary point.
    Space(String),
    /// `.`: the working point.
    Working,
    /// `..` repeated n times (`..:..` is 2): the working point's n-th ancestor.
    Up(usize),
    /// `${name}`: a variable holding a whole point.
    Var(String),
}

/// A segment of a [`PointVar`] after its lead.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VarSeg {
    /// A literal segment.
    Seg(PointSeg),
    /// `:${name}`: a variable holding one segment (a base or a version).
    Var(String),
    /// `${name}` inside a file system: a variable holding a path; `dir` when a `/` follows it.
    FsVar {
        /// The variable's name.
        name: String,
        /// Whether the variable is followed by `/` (it names a directory).
        dir: bool,
    },
}

/// A point that may contain `${var}` segments and begin with `.` or `..` (SPEC §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PointVar {
    route: RouteSeg,
    lead: Lead,
    tail: Vec<VarSeg>,
}

/// What a [`PointVar`] is resolved against: the working point and the variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    working: Option<Point>,
    vars: HashMap<String, String>,
}

impl Env {
    /// An empty environment.
    pub fn new() -> Env {
        Env::default()
    }

    /// The same environment with `point` as the working point.
    pub fn with_working(mut self, point: Point) -> Env {
        self.working = Some(point);
        self
    }

    /// The same environment with `name` set to `value`.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Env {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Sets `name` to `value`.
    pub fn set_var(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// The working point, if any.
    pub fn working(&self) -> Option<&Point> {
        self.working.as_ref()
    }

    /// The value of `name`, if set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str, PointError> {
        self.var(name)
            .ok_or_else(|| PointError::MissingVariable(name.to_string()))
    }
}

impl PointVar {
    /// The route.
    pub fn route(&self) -> &RouteSeg {
        &self.route
    }

    /// How it begins.
    pub fn lead(&self) -> &Lead {
        &self.lead
    }

    /// The segments after the lead.
    pub fn tail(&self) -> &[VarSeg] {
        &self.tail
    }

    /// The plain point, if this has no variables and no relative beginning.
    pub fn to_point(&self) -> Option<Point> {
        let mut segments = match &self.lead {
            Lead::Root => Vec::new(),
            Lead::Space(space) => vec![PointSeg::Space(space.clone())],
            _ => return None,
        };
        for seg in &self.tail {
            match seg {
                VarSeg::Seg(s) => segments.push(s.clone()),
                _ => return None,
            }
        }
        Some(Point::from_parts(self.route.clone(), segments))
    }

    /// Resolves variables and the relative beginning against `env`, checking the result is a
    /// valid point. Errors name the missing variable or the value that did not fit.
    pub fn resolve(&self, env: &Env) -> Result<Point, PointError> {
        let mut point = match &self.lead {
            Lead::Root => Point::root().with_route(self.route.clone()),
            Lead::Space(space) => {
                Point::from_parts(self.route.clone(), vec![PointSeg::Space(space.clone())])
            }
            Lead::Working => env.working().cloned().ok_or(PointError::NoWorkingPoint)?,
            Lead::Up(n) => {
                let mut point = env.working().cloned().ok_or(PointError::NoWorkingPoint)?;
                for _ in 0..*n {
                    point = point.parent().ok_or(PointError::AboveRoot)?;
                }
                point
            }
            Lead::Var(name) => {
                let value = env.require(name)?;
                value
                    .parse::<Point>()
                    .map_err(|e| bad_value(name, value, e))?
            }
        };
        for seg in &self.tail {
            point = match seg {
                VarSeg::Seg(s) => point.push(s.clone())?,
                VarSeg::Var(name) => {
                    let value = env.require(name)?;
                    point
                        .push_str(value)
                        .map_err(|e| bad_value(name, value, e))?
                }
                VarSeg::FsVar { name, dir } => {
                    let value = env.require(name)?;
                    let path = if *dir && !value.is_empty() && !value.ends_with('/') {
                        format!("{value}/")
                    } else {
                        value.to_string()
                    };
                    point
                        .push_path(&path)
                        .map_err(|e| bad_value(name, value, e))?
                }
            };
        }
        Ok(point)
    }

    /// Parses a point-var at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<PointVar, ParseError> {
        let start = c.pos();
        let route = if c.starts_with(".") || c.starts_with("${") {
            RouteSeg::This
        } else {
            parse_route(c)?
        };
        let lead = if c.eat("ROOT") {
            if c.peek()
                .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == ':')
            {
                return Err(c.error("'ROOT' stands alone and takes no segments"));
            }
            return Ok(PointVar {
                route,
                lead: Lead::Root,
                tail: Vec::new(),
            });
        } else if c.starts_with(".") {
            if route != RouteSeg::This {
                return Err(c.error("a relative point ('.' or '..') cannot have a route"));
            }
            if c.eat("..") {
                let mut n = 1;
                while c.starts_with(":..") {
                    c.eat(":..");
                    n += 1;
                }
                Lead::Up(n)
            } else {
                c.bump();
                Lead::Working
            }
        } else if c.starts_with("${") {
            Lead::Var(parse_var_name(c)?)
        } else {
            Lead::Space(parse_domain(c, "a space, '.', '..' or a ${variable}")?)
        };
        let mut tail = Vec::new();
        let mut after_version = false;
        while c.peek() == Some(':') && c.peek2() != Some(':') {
            c.bump();
            match c.peek() {
                Some('/') => {
                    c.bump();
                    tail.push(VarSeg::Seg(PointSeg::FsRoot));
                    parse_fs_var(c, &mut tail)?;
                    break;
                }
                _ if after_version => {
                    return Err(c.error_at(
                        c.pos() - 1,
                        "only ':/' (a file system) may follow a version",
                    ));
                }
                Some('$') => tail.push(VarSeg::Var(parse_var_name(c)?)),
                Some('0'..='9') => {
                    tail.push(VarSeg::Seg(PointSeg::Version(parse_version(c)?)));
                    after_version = true;
                }
                Some('a'..='z') => {
                    let base = c.take_while(|ch| {
                        ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'
                    });
                    if c.peek()
                        .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
                    {
                        return Err(
                            c.error("expected a skewer-case base segment ([a-z][a-z0-9-]*)")
                        );
                    }
                    tail.push(VarSeg::Seg(PointSeg::Base(base.to_string())));
                }
                _ => {
                    return Err(c.error(
                        "expected a skewer-case base segment, a version, a ${variable} or ':/'",
                    ));
                }
            }
        }
        if matches!(lead, Lead::Working | Lead::Up(_))
            && c.peek().is_some_and(|ch| ch.is_ascii_alphanumeric())
        {
            return Err(c.error_at(start, "expected ':' after '.' or '..'"));
        }
        Ok(PointVar { route, lead, tail })
    }
}

fn bad_value(name: &str, value: &str, error: impl fmt::Display) -> PointError {
    PointError::BadVariable {
        name: name.to_string(),
        value: value.to_string(),
        reason: error.to_string(),
    }
}

/// `${name}` with `name := [A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn parse_var_name(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    let start = c.pos();
    c.expect("${", "'${' to begin a variable")?;
    let at = c.pos();
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if name.is_empty() || name.starts_with(|ch: char| ch.is_ascii_digit()) {
        return Err(c.error_at(at, "expected a variable name ([A-Za-z_][A-Za-z0-9_]*)"));
    }
    if !c.eat_char('}') {
        return Err(c.error_span(
            Span::new(start, c.pos()),
            "expected '}' to close the variable",
        ));
    }
    Ok(name.to_string())
}

/// The file-system part after `:/`: names and `${vars}` separated by `/`.
fn parse_fs_var(c: &mut Cursor<'_>, tail: &mut Vec<VarSeg>) -> Result<(), ParseError> {
    loop {
        if c.starts_with("${") {
            let name = parse_var_name(c)?;
            let dir = c.eat_char('/');
            tail.push(VarSeg::FsVar { name, dir });
            if !dir {
                return Ok(());
            }
            continue;
        }
        let at = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
        if name.is_empty() {
            return Ok(());
        }
        if name == "." || name == ".." {
            return Err(c.error_span(
                Span::new(at, c.pos()),
                "'.' and '..' are not allowed in a file-system path",
            ));
        }
        if c.eat_char('/') {
            tail.push(VarSeg::Seg(PointSeg::Dir(name.to_string())));
        } else {
            tail.push(VarSeg::Seg(PointSeg::File(name.to_string())));
            return Ok(());
        }
    }
}

impl fmt::Display for PointVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.route)?;
        match &self.lead {
            Lead::Root => return f.write_str("ROOT"),
            Lead::Space(space) => f.write_str(space)?,
            Lead::Working => f.write_str(".")?,
            Lead::Up(n) => f.write_str(&vec![".."; *n].join(":"))?,
            Lead::Var(name) => write!(f, "${{{name}}}")?,
        }
        for seg in &self.tail {
            match seg {
                VarSeg::Seg(s) => write_segments_after(f, s)?,
                VarSeg::Var(name) => write!(f, ":${{{name}}}")?,
                VarSeg::FsVar { name, dir } => {
                    write!(f, "${{{name}}}{}", if *dir { "/" } else { "" })?
                }
            }
        }
        Ok(())
    }
}

/// Writes one literal segment that follows at least one other.
fn write_segments_after(f: &mut fmt::Formatter<'_>, segment: &PointSeg) -> fmt::Result {
    match segment {
        // `write_segments` prints a leading space without a `:`, so give it a placeholder.
        PointSeg::Space(s) => write!(f, ":{s}"),
        other => {
            let pair = [PointSeg::Space(String::new()), other.clone()];
            write_segments(f, &pair)
        }
    }
}

impl FromStr for PointVar {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("point", s, PointVar::parse)
    }
}

impl From<Point> for PointVar {
    fn from(point: Point) -> PointVar {
        let mut segments = point.segments.into_iter();
        let lead = match segments.next() {
            None => Lead::Root,
            Some(PointSeg::Space(space)) => Lead::Space(space),
            Some(other) => {
                // Points always begin with a space; keep the segment rather than lose it.
                return PointVar {
                    route: point.route,
                    lead: Lead::Root,
                    tail: std::iter::once(VarSeg::Seg(other))
                        .chain(segments.map(VarSeg::Seg))
                        .collect(),
                };
            }
        };
        PointVar {
            route: point.route,
            lead,
            tail: segments.map(VarSeg::Seg).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> PointVar {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn vars_round_trip() {
        for s in [
            ".",
            "..",
            "..:..:other",
            ".:child",
            "${bundle}:/wasm/hello.wasm",
            "localhost:repo:site:1.0.0:/html/${path}",
            "localhost:${app}:users",
            "localhost:base:/${dir}/index.html",
            "localhost",
            "ROOT",
            "GLOBAL::executor",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
    }

    #[test]
    fn resolution_names_what_is_missing() {
        let env = Env::new().with_working("localhost:app".parse().unwrap());
        assert_eq!(
            v("${bundle}:/x").resolve(&env),
            Err(PointError::MissingVariable("bundle".into()))
        );
        assert_eq!(v(".").resolve(&Env::new()), Err(PointError::NoWorkingPoint));
        assert_eq!(v("..:..:..").resolve(&env), Err(PointError::AboveRoot));
        assert_eq!(
            v("..:other").resolve(&env).unwrap().to_string(),
            "localhost:other"
        );
        let bad = Env::new().with_var("app", "Not_Skewer");
        assert!(matches!(
            v("localhost:${app}").resolve(&bad),
            Err(PointError::BadVariable { .. })
        ));
        let escape = Env::new().with_var("path", "../../etc/passwd");
        assert!(v("localhost:b:/${path}").resolve(&escape).is_err());
    }

    #[test]
    fn bundle_variable_expands_to_a_whole_point() {
        let env = Env::new().with_var("bundle", "repo:hello:1.0.0");
        assert_eq!(
            v("${bundle}:/wasm/hello.wasm")
                .resolve(&env)
                .unwrap()
                .to_string(),
            "repo:hello:1.0.0:/wasm/hello.wasm"
        );
    }

    #[test]
    fn a_plain_point_var_is_a_point() {
        let point: Point = "localhost:a:1.0.0:/x/y".parse().unwrap();
        assert_eq!(
            PointVar::from(point.clone()).to_point(),
            Some(point.clone())
        );
        assert_eq!(v("localhost:a:1.0.0:/x/y").to_point(), Some(point));
    }
}
