//! The two kinds of path a bind writes: [`PathRegex`], which selects a route by the wave's
//! path, and [`PathTemplate`], the path of a call built from the variables it captured
//! (SPEC §7).

use std::fmt;
use std::hash::{Hash, Hasher};

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::point::{Env, PointError, parse_var_name};
use crate::syntax::{Cursor, ParseError, Span};

/// A path regex, compiled so it matches the **whole** path (`^(?:source)$`); its named
/// captures become variables of the selected pipeline.
///
/// It keeps its source for printing, comparison and serialization; deserializing compiles the
/// source again and fails cleanly when it is not a valid path regex.
#[derive(Clone)]
pub struct PathRegex {
    source: String,
    regex: Regex,
}

impl PathRegex {
    /// The longest source accepted, in bytes.
    pub const MAX_SOURCE_LEN: usize = 1024;
    /// The most memory one compiled regex may take (regex's `size_limit`), in bytes.
    pub const SIZE_LIMIT: usize = 256 * 1024;
    /// The most memory the lazy DFA of one regex may cache while matching, in bytes.
    pub const DFA_SIZE_LIMIT: usize = 256 * 1024;
    /// The deepest nesting of groups and classes accepted.
    pub const NEST_LIMIT: u32 = 32;

    /// Compiles `source`, which must begin with `/` and contain no white space. On error the
    /// message says what is wrong; the span (relative to `source`) says where.
    pub fn new(source: &str) -> Result<PathRegex, (Span, String)> {
        if source.len() > Self::MAX_SOURCE_LEN {
            return Err((
                Span::new(0, source.len()),
                format!(
                    "a path regex may be at most {} bytes long; this one is {}",
                    Self::MAX_SOURCE_LEN,
                    source.len()
                ),
            ));
        }
        if !source.starts_with('/') {
            return Err((
                Span::at(0),
                "a path regex begins with '/' (paths always do; it is anchored at both ends \
                 already)"
                    .to_string(),
            ));
        }
        if let Some((at, _)) = source.char_indices().find(|(_, c)| c.is_whitespace()) {
            return Err((
                Span::at(at),
                "a path regex may not contain white space (write \\s or %20)".to_string(),
            ));
        }
        if let Some(at) = source.find("->") {
            return Err((
                Span::new(at, at + 2),
                "a path regex may not contain '->', which begins a pipeline (write -[>] for a \
                 literal '->')"
                    .to_string(),
            ));
        }
        // Check the source is a regex on its own before wrapping it, so a source such as
        // `/a)|(.*` cannot close the anchoring group and escape the anchors. A size limit of
        // zero stops the check right after parsing: `CompiledTooBig` means the syntax is fine.
        if let Err(regex::Error::Syntax(message)) = builder(source).size_limit(0).build() {
            return Err(syntax_error(source, &message));
        }
        let anchored = format!("^(?:{source})$");
        match builder(&anchored).build() {
            Ok(regex) => Ok(PathRegex {
                source: source.to_string(),
                regex,
            }),
            Err(regex::Error::CompiledTooBig(limit)) => Err((
                Span::new(0, source.len()),
                format!(
                    "this path regex compiles to more than {limit} bytes; Unicode classes such \
                     as \\w and \\d and large counted repetitions are big: paths are ASCII, so \
                     write [A-Za-z0-9_] or (?-u:\\w) instead"
                ),
            )),
            Err(regex::Error::Syntax(message)) => Err((
                Span::new(0, source.len()),
                format!("invalid path regex: {}", last_line(&message)),
            )),
            Err(other) => Err((
                Span::new(0, source.len()),
                format!("invalid path regex: {other}"),
            )),
        }
    }

    /// The regex as written in the bind (without the anchors added when compiling it).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the regex matches the whole of `path`.
    pub fn is_match(&self, path: &str) -> bool {
        self.regex.is_match(path)
    }

    /// Matches the whole of `path` and, on a match, sets every named capture in `vars` (a
    /// named group that took no part in the match is set to the empty string).
    pub fn capture_into(&self, path: &str, vars: &mut Env) -> bool {
        let Some(captures) = self.regex.captures(path) else {
            return false;
        };
        for name in self.regex.capture_names().flatten() {
            let value = captures.name(name).map(|m| m.as_str()).unwrap_or_default();
            vars.set_var(name, value);
        }
        true
    }

    /// The names of the regex's named capture groups, in order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.regex.capture_names().flatten()
    }

    /// Parses a path regex at the cursor: everything from the `/` up to the first white space
    /// or `->`.
    pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<PathRegex, ParseError> {
        let start = c.pos();
        let rest = c.rest();
        let len = rest
            .char_indices()
            .find(|&(i, ch)| ch.is_whitespace() || rest[i..].starts_with("->"))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let source = &rest[..len];
        c.reset(start + len);
        PathRegex::new(source).map_err(|(span, message)| {
            c.error_span(Span::new(start + span.start, start + span.end), message)
        })
    }
}

fn builder(pattern: &str) -> RegexBuilder {
    let mut builder = RegexBuilder::new(pattern);
    builder
        .size_limit(PathRegex::SIZE_LIMIT)
        .dfa_size_limit(PathRegex::DFA_SIZE_LIMIT)
        .nest_limit(PathRegex::NEST_LIMIT);
    builder
}

/// The last line of regex's message (`error: unclosed group`), without its `error: `.
fn last_line(message: &str) -> &str {
    let line = message.lines().last().unwrap_or(message).trim();
    line.strip_prefix("error: ").unwrap_or(line)
}

/// Turns regex's syntax error into a span of `source` and a message. regex renders a
/// single-line pattern as `regex parse error:`, the pattern indented by four spaces, a line of
/// carets under the offending part and `error: …`; the carets give the span.
fn syntax_error(source: &str, message: &str) -> (Span, String) {
    let text = format!("invalid path regex: {}", last_line(message));
    let lines: Vec<&str> = message.lines().collect();
    let caret = lines.iter().find(|line| {
        let trimmed = line.trim();
        !trimmed.is_empty() && trimmed.chars().all(|c| c == '^')
    });
    let Some(caret) = caret else {
        return (Span::new(0, source.len()), text);
    };
    let col = caret.chars().take_while(|&c| c == ' ').count();
    let width = caret.trim().chars().count();
    let Some(col) = col.checked_sub(4) else {
        return (Span::new(0, source.len()), text);
    };
    let offset = |chars: usize| {
        source
            .char_indices()
            .nth(chars)
            .map(|(i, _)| i)
            .unwrap_or(source.len())
    };
    (Span::new(offset(col), offset(col + width)), text)
}

impl fmt::Display for PathRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for PathRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PathRegex").field(&self.source).finish()
    }
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for PathRegex {}

impl Hash for PathRegex {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl Serialize for PathRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for PathRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        PathRegex::new(&source).map_err(|(_, message)| serde::de::Error::custom(message))
    }
}

/// One piece of a [`PathTemplate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathPart {
    /// Literal text.
    Text(String),
    /// `${name}`: the value of a variable.
    Var(String),
}

/// The path of a call (`point^Method/path`), which may contain `${var}`s, e.g. `/${rest}`.
///
/// It begins with `/`; literal characters are the URI path characters
/// `A-Z a-z 0-9 - . _ ~ % / : @ ! * + ,`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PathTemplate {
    parts: Vec<PathPart>,
}

impl PathTemplate {
    /// A template from its parts, checking that it begins with `/`, that literal text uses
    /// only path characters and variable names are `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn new(parts: Vec<PathPart>) -> Result<PathTemplate, ParseError> {
        let template = PathTemplate { parts };
        // Printing and parsing back is the one check of every rule.
        Cursor::parse_all("path template", &template.to_string(), PathTemplate::parse)
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[PathPart] {
        &self.parts
    }

    /// The variables the template uses, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> + '_ {
        self.parts.iter().filter_map(|part| match part {
            PathPart::Var(name) => Some(name.as_str()),
            PathPart::Text(_) => None,
        })
    }

    /// The path with every variable replaced by its value in `env`; fails naming the first
    /// variable that is not set.
    pub fn resolve(&self, env: &Env) -> Result<String, PointError> {
        let mut path = String::new();
        for part in &self.parts {
            match part {
                PathPart::Text(text) => path.push_str(text),
                PathPart::Var(name) => path.push_str(
                    env.var(name)
                        .ok_or_else(|| PointError::MissingVariable(name.clone()))?,
                ),
            }
        }
        Ok(path)
    }

    /// Parses a path template at the cursor; it ends at the first character that is neither a
    /// path character nor the start of a `${var}`.
    pub fn parse(c: &mut Cursor<'_>) -> Result<PathTemplate, ParseError> {
        if c.peek() != Some('/') {
            return Err(c.error("expected a path beginning with '/'"));
        }
        let mut parts = Vec::new();
        loop {
            if c.starts_with("${") {
                parts.push(PathPart::Var(parse_var_name(c)?));
                continue;
            }
            let text = c.take_while(is_path_char);
            if text.is_empty() {
                break;
            }
            // Adjacent literal runs cannot occur: a run only ends at a variable or the end.
            parts.push(PathPart::Text(text.to_string()));
        }
        if c.peek() == Some('$') {
            return Err(c.error("expected '${' to begin a variable"));
        }
        Ok(PathTemplate { parts })
    }
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '_' | '~' | '%' | '/' | ':' | '@' | '!' | '*' | '+' | ','
        )
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                PathPart::Text(text) => f.write_str(text)?,
                PathPart::Var(name) => write!(f, "${{{name}}}")?,
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for PathTemplate {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("path template", s, PathTemplate::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(s: &str) -> PathRegex {
        PathRegex::new(s).unwrap_or_else(|(_, e)| panic!("{s}: {e}"))
    }

    #[test]
    fn a_path_regex_matches_the_whole_path() {
        let r = re("/static");
        assert!(r.is_match("/static"));
        assert!(!r.is_match("/staticx/a"));
        assert!(!r.is_match("/x/static"));
        let alt = re("/a|/ab");
        assert!(alt.is_match("/ab"), "alternation is inside the anchors");
        assert!(!alt.is_match("/abc"));
    }

    #[test]
    fn named_captures_become_variables() {
        let r = re("/static/(?P<path>.*)");
        let mut env = Env::new();
        assert!(r.capture_into("/static/a/b.css", &mut env));
        assert_eq!(env.var("path"), Some("a/b.css"));
        let optional = re("/app(?P<rest>/.*)?");
        let mut env = Env::new();
        assert!(optional.capture_into("/app", &mut env));
        assert_eq!(env.var("rest"), Some(""));
        assert_eq!(optional.capture_names().collect::<Vec<_>>(), ["rest"]);
    }

    #[test]
    fn a_source_cannot_escape_the_anchors() {
        // On its own `/a)|(.*` is not a regex (unopened group), so it is refused even though
        // wrapped as `^(?:/a)|(.*)$` it would compile and match anything.
        let (span, message) = PathRegex::new("/a)|(.*").unwrap_err();
        assert_eq!(span, Span::new(2, 3));
        assert_eq!(message, "invalid path regex: unopened group");
    }

    #[test]
    fn errors_point_into_the_source() {
        let (span, message) = PathRegex::new("/a/(").unwrap_err();
        assert_eq!(
            (span, message.as_str()),
            (Span::new(3, 4), "invalid path regex: unclosed group")
        );
        let (span, _) = PathRegex::new("/é/[z-a]").unwrap_err();
        assert_eq!(
            span,
            Span::new(5, 8),
            "byte offsets, after a two-byte character"
        );
        assert_eq!(PathRegex::new("static").unwrap_err().0, Span::at(0));
        assert_eq!(PathRegex::new("/a b").unwrap_err().0, Span::at(2));
        assert_eq!(PathRegex::new("/a->b").unwrap_err().0, Span::new(2, 4));
        assert!(re("/a-[>]b").is_match("/a->b"));
    }

    #[test]
    fn hostile_regexes_are_bounded() {
        let (_, message) = PathRegex::new("/a{1000}{1000}").unwrap_err();
        assert!(
            message.contains("compiles to more than 262144 bytes"),
            "{message}"
        );
        let deep = format!("/{}a{}", "(".repeat(40), ")".repeat(40));
        let (_, message) = PathRegex::new(&deep).unwrap_err();
        assert!(message.contains("nested"), "{message}");
        let long = format!("/{}", "a".repeat(PathRegex::MAX_SOURCE_LEN));
        assert!(PathRegex::new(&long).is_err());
        // Ordinary route regexes fit comfortably.
        re("/(?P<x>\\w+)");
        re("/(?P<x>[A-Za-z0-9_-]{1,64})/(?P<rest>.*)");
    }

    #[test]
    fn serde_keeps_the_source_and_recompiles() {
        let r = re("/static/(?P<path>.*)");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#""/static/(?P<path>.*)""#);
        let back: PathRegex = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert!(back.is_match("/static/x"));
        assert!(serde_json::from_str::<PathRegex>(r#""/a/(""#).is_err());
    }

    #[test]
    fn templates_resolve_their_variables() {
        let t: PathTemplate = "/api/${rest}".parse().unwrap();
        assert_eq!(t.to_string(), "/api/${rest}");
        assert_eq!(t.vars().collect::<Vec<_>>(), ["rest"]);
        let env = Env::new().with_var("rest", "x/y");
        assert_eq!(t.resolve(&env).unwrap(), "/api/x/y");
        assert_eq!(
            t.resolve(&Env::new()),
            Err(PointError::MissingVariable("rest".into()))
        );
        assert!("api".parse::<PathTemplate>().is_err());
        assert!("/a$b".parse::<PathTemplate>().is_err());
        assert!("/a b".parse::<PathTemplate>().is_err());
        assert!(PathTemplate::new(vec![PathPart::Text("/a b".into())]).is_err());
        assert!(
            PathTemplate::new(vec![PathPart::Text("/a".into()), PathPart::Var("b".into())]).is_ok()
        );
    }
}
