//! Property changes in commands (SPEC §10): the `{ +name=value, +@name=value, !name }` block
//! of `create` and `set`, the `{ name, … }` list of `get`, and the value syntax both share.
//!
//! A value is either an unquoted run of characters up to `,`, `}` or the end of the line
//! (trimmed, never empty), or a double-quoted string in which `\"` and `\\` are the only
//! escapes. Printing quotes a value only when the unquoted form would not read back the same.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::syntax::{Cursor, ParseError, Span, is_skewer};

/// One change to one property: set it (and maybe lock it), or remove it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PropertyChange {
    /// `+name=value` sets the property; `+@name=value` also locks it so later `set`s are refused.
    Set {
        /// The property's skewer-case name.
        name: String,
        /// The new value (any text; printing quotes it when needed).
        value: String,
        /// `@`: lock the property at this value.
        lock: bool,
    },
    /// `!name` removes the property.
    Remove {
        /// The property's skewer-case name.
        name: String,
    },
}

impl PropertyChange {
    /// `+name=value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> PropertyChange {
        PropertyChange::Set {
            name: name.into(),
            value: value.into(),
            lock: false,
        }
    }

    /// `+@name=value`.
    pub fn lock(name: impl Into<String>, value: impl Into<String>) -> PropertyChange {
        PropertyChange::Set {
            name: name.into(),
            value: value.into(),
            lock: true,
        }
    }

    /// `!name`.
    pub fn remove(name: impl Into<String>) -> PropertyChange {
        PropertyChange::Remove { name: name.into() }
    }

    /// The name of the property it changes.
    pub fn name(&self) -> &str {
        match self {
            PropertyChange::Set { name, .. } | PropertyChange::Remove { name } => name,
        }
    }

    /// Parses one change at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<PropertyChange, ParseError> {
        if c.eat_char('+') {
            let lock = c.eat_char('@');
            let name = parse_property_name(c)?;
            c.skip_ws();
            c.expect("=", &format!("'=' and a value for property '{name}'"))?;
            let value = parse_value(c, &[',', '}', '\n'], "a value after '='", true)?;
            Ok(PropertyChange::Set { name, value, lock })
        } else if c.eat_char('!') {
            Ok(PropertyChange::Remove {
                name: parse_property_name(c)?,
            })
        } else {
            Err(c.error("expected a property change: +name=value, +@name=value (locked) or !name"))
        }
    }
}

impl fmt::Display for PropertyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyChange::Set { name, value, lock } => {
                let at = if *lock { "@" } else { "" };
                write!(f, "+{at}{name}=")?;
                write_value(f, value, &[',', '}', '\n'])
            }
            PropertyChange::Remove { name } => write!(f, "!{name}"),
        }
    }
}

/// The `{ … }` block of `create` and `set`: property changes, at most one per name, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PropertyChanges {
    changes: Vec<PropertyChange>,
}

impl PropertyChanges {
    /// No changes.
    pub fn new() -> PropertyChanges {
        PropertyChanges::default()
    }

    /// The same changes plus `change`; it replaces an earlier change of the same property, so
    /// there is never more than one change per name.
    pub fn with(mut self, change: PropertyChange) -> PropertyChanges {
        self.push(change);
        self
    }

    /// Adds `change`, replacing an earlier change of the same property.
    pub fn push(&mut self, change: PropertyChange) {
        match self.changes.iter_mut().find(|c| c.name() == change.name()) {
            Some(existing) => *existing = change,
            None => self.changes.push(change),
        }
    }

    /// The changes in the order they were written.
    pub fn iter(&self) -> std::slice::Iter<'_, PropertyChange> {
        self.changes.iter()
    }

    /// The change of property `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&PropertyChange> {
        self.changes.iter().find(|c| c.name() == name)
    }

    /// How many properties change.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Parses `{ change, … }` at the cursor (a trailing `,` is allowed; `{}` is empty). A name
    /// may appear only once.
    pub fn parse(c: &mut Cursor<'_>) -> Result<PropertyChanges, ParseError> {
        let mut changes = PropertyChanges::new();
        let mut seen = BTreeSet::new();
        parse_braced(c, "property change", |c| {
            let start = c.pos();
            let change = PropertyChange::parse(c)?;
            if !seen.insert(change.name().to_string()) {
                return Err(c.error_span(
                    Span::new(start, c.pos()),
                    format!("property '{}' is changed twice", change.name()),
                ));
            }
            changes.changes.push(change);
            Ok(())
        })?;
        Ok(changes)
    }
}

impl<'a> IntoIterator for &'a PropertyChanges {
    type Item = &'a PropertyChange;
    type IntoIter = std::slice::Iter<'a, PropertyChange>;
    fn into_iter(self) -> Self::IntoIter {
        self.changes.iter()
    }
}

impl FromIterator<PropertyChange> for PropertyChanges {
    fn from_iter<I: IntoIterator<Item = PropertyChange>>(iter: I) -> PropertyChanges {
        iter.into_iter()
            .fold(PropertyChanges::new(), PropertyChanges::with)
    }
}

/// Prints `{ +a=1, !b }`, or `{}` when empty.
impl fmt::Display for PropertyChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_braced(f, self.changes.iter())
    }
}

impl FromStr for PropertyChanges {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("properties", s, PropertyChanges::parse)
    }
}

/// Parses the `{ name, … }` list of `get`: at least one skewer-case name, each at most once.
pub(crate) fn parse_property_names(c: &mut Cursor<'_>) -> Result<Vec<String>, ParseError> {
    let open = c.pos();
    let mut names: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    parse_braced(c, "property name", |c| {
        let start = c.pos();
        let name = parse_property_name(c)?;
        if !seen.insert(name.clone()) {
            return Err(c.error_span(
                Span::new(start, c.pos()),
                format!("property '{name}' is named twice"),
            ));
        }
        names.push(name);
        Ok(())
    })?;
    if names.is_empty() {
        return Err(c.error_span(
            Span::new(open, c.pos()),
            "name at least one property, or leave out the braces to get them all",
        ));
    }
    Ok(names)
}

/// `{ item, item, … }` with free white space and an optional trailing `,`.
fn parse_braced(
    c: &mut Cursor<'_>,
    item: &str,
    mut parse_item: impl FnMut(&mut Cursor<'_>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let open = c.pos();
    c.expect("{", "'{'")?;
    loop {
        c.skip_ws();
        if c.eat_char('}') {
            return Ok(());
        }
        if c.at_end() {
            return Err(c.error_span(
                Span::at(open),
                format!("this '{{' is never closed: expected a {item} or '}}'"),
            ));
        }
        parse_item(c)?;
        c.skip_ws();
        if c.at_end() {
            return Err(c.error_span(
                Span::at(open),
                format!("this '{{' is never closed: expected ',' and another {item}, or '}}'"),
            ));
        }
        if c.eat_char(',') {
            continue;
        }
        if c.eat_char('}') {
            return Ok(());
        }
        return Err(c.error(format!("expected ',' and another {item}, or '}}' to close")));
    }
}

fn write_braced<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    f.write_str("{")?;
    let mut any = false;
    for (i, item) in items.enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        write!(f, "{item}")?;
        any = true;
    }
    f.write_str(if any { " }" } else { "}" })
}

/// Writes the `{ a, b }` list of `get`.
pub(crate) fn write_property_names(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    write_braced(f, names.iter())
}

/// A property name: skewer case, `[a-z][a-z0-9-]*`.
fn parse_property_name(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    let start = c.pos();
    let name = c.take_while(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    let bad = |c: &Cursor<'_>, at: usize| {
        c.error_at(
            at,
            "expected a property name in skewer case ([a-z][a-z0-9-]*, e.g. my-prop)",
        )
    };
    if !is_skewer(name) {
        return Err(bad(c, start));
    }
    if c.peek()
        .is_some_and(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '.'))
    {
        return Err(bad(c, c.pos()));
    }
    Ok(name.to_string())
}

/// A value: a double-quoted string, or the trimmed run of characters up to one of `stops`
/// (which must then be non-empty). `what` names the value in errors; `may_be_empty` says
/// whether `""` is allowed.
pub(crate) fn parse_value(
    c: &mut Cursor<'_>,
    stops: &[char],
    what: &str,
    may_be_empty: bool,
) -> Result<String, ParseError> {
    c.take_while(|ch| ch == ' ' || ch == '\t');
    let start = c.pos();
    if c.peek() == Some('"') {
        let value = parse_quoted(c)?;
        if value.is_empty() && !may_be_empty {
            return Err(c.error_span(Span::new(start, c.pos()), format!("expected {what}")));
        }
        return Ok(value);
    }
    let value = c.take_while(|ch| !stops.contains(&ch)).trim();
    if value.is_empty() {
        let hint = if may_be_empty {
            " (write \"\" for an empty value)"
        } else {
            ""
        };
        return Err(c.error_at(start, format!("expected {what}{hint}")));
    }
    Ok(value.to_string())
}

/// `"…"` with `\"` and `\\` escapes; the cursor is at the opening quote.
fn parse_quoted(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    let open = c.pos();
    c.bump();
    let mut value = String::new();
    loop {
        let at = c.pos();
        match c.bump() {
            None => {
                return Err(c.error_span(
                    Span::new(open, open + 1),
                    "unterminated string: expected '\"' to close it",
                ));
            }
            Some('"') => return Ok(value),
            Some('\\') => match c.bump() {
                Some(ch @ ('"' | '\\')) => value.push(ch),
                None => {
                    return Err(c.error_span(
                        Span::new(open, open + 1),
                        "unterminated string: expected '\"' to close it",
                    ));
                }
                Some(_) => {
                    return Err(c.error_span(
                        Span::new(at, c.pos()),
                        "unknown escape: only \\\" and \\\\ may follow '\\' in a string",
                    ));
                }
            },
            Some(ch) => value.push(ch),
        }
    }
}

/// Writes `value` unquoted when that reads back the same (up to one of `stops`, trimmed,
/// non-empty), else quoted with `"` and `\` escaped.
pub(crate) fn write_value(f: &mut fmt::Formatter<'_>, value: &str, stops: &[char]) -> fmt::Result {
    let quote = value.is_empty()
        || value.starts_with('"')
        || value.trim() != value
        || value.contains(stops);
    if !quote {
        return f.write_str(value);
    }
    f.write_str("\"")?;
    for ch in value.chars() {
        if matches!(ch, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{ch}")?;
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(s: &str) -> PropertyChanges {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn error(s: &str) -> ParseError {
        s.parse::<PropertyChanges>().expect_err(s)
    }

    #[test]
    fn sets_locks_and_removes() {
        let parsed = changes("{ +config=a:b:c, +@locked=x, !old }");
        assert_eq!(
            parsed.iter().cloned().collect::<Vec<_>>(),
            vec![
                PropertyChange::set("config", "a:b:c"),
                PropertyChange::lock("locked", "x"),
                PropertyChange::remove("old"),
            ]
        );
        assert_eq!(parsed.to_string(), "{ +config=a:b:c, +@locked=x, !old }");
    }

    #[test]
    fn unquoted_values_are_trimmed_and_run_to_a_comma_brace_or_newline() {
        let parsed = changes("{+a=  hello world  ,+b=x\n,+c=#fff}");
        assert_eq!(
            parsed.get("a"),
            Some(&PropertyChange::set("a", "hello world"))
        );
        assert_eq!(parsed.get("b"), Some(&PropertyChange::set("b", "x")));
        assert_eq!(parsed.get("c"), Some(&PropertyChange::set("c", "#fff")));
        assert_eq!(parsed.to_string(), "{ +a=hello world, +b=x, +c=#fff }");
    }

    #[test]
    fn quoted_values_hold_anything() {
        let parsed = changes(r#"{ +a="x, y}", +b="say \"hi\" \\ bye", +c="", +d=" pad " }"#);
        assert_eq!(parsed.get("a"), Some(&PropertyChange::set("a", "x, y}")));
        assert_eq!(
            parsed.get("b"),
            Some(&PropertyChange::set("b", r#"say "hi" \ bye"#))
        );
        assert_eq!(parsed.get("c"), Some(&PropertyChange::set("c", "")));
        assert_eq!(parsed.get("d"), Some(&PropertyChange::set("d", " pad ")));
        // Quotes appear only where they are needed.
        assert_eq!(
            parsed.to_string(),
            r#"{ +a="x, y}", +b=say "hi" \ bye, +c="", +d=" pad " }"#
        );
        assert_eq!(
            changes(&parsed.to_string()),
            parsed,
            "canonical form reads back"
        );
        let multi = PropertyChanges::new().with(PropertyChange::set("m", "line 1\nline 2"));
        assert_eq!(multi.to_string(), "{ +m=\"line 1\nline 2\" }");
        assert_eq!(changes(&multi.to_string()), multi);
        // Without quotes a value runs to the next ',' or '}', spaces and '+' included.
        assert_eq!(
            changes("{ +a=1 +b=2 }").get("a"),
            Some(&PropertyChange::set("a", "1 +b=2"))
        );
        let quote_first = PropertyChanges::new().with(PropertyChange::set("q", "\"x"));
        assert_eq!(quote_first.to_string(), r#"{ +q="\"x" }"#);
    }

    #[test]
    fn braces_may_be_empty_and_take_a_trailing_comma() {
        assert!(changes("{}").is_empty());
        assert!(changes("{ \n }").is_empty());
        assert_eq!(changes("{ !a, }").len(), 1);
        assert_eq!(PropertyChanges::new().to_string(), "{}");
    }

    #[test]
    fn later_pushes_replace_earlier_changes_of_the_same_name() {
        let built: PropertyChanges = [
            PropertyChange::set("a", "1"),
            PropertyChange::remove("b"),
            PropertyChange::lock("a", "2"),
        ]
        .into_iter()
        .collect();
        assert_eq!(built.to_string(), "{ +@a=2, !b }");
    }

    #[test]
    fn errors_point_where_it_goes_wrong() {
        for (input, col, message) in [
            ("{ +Config=x }", 4, "expected a property name"),
            ("{ +my_prop=x }", 6, "expected a property name"),
            ("{ +a }", 6, "expected '=' and a value for property 'a'"),
            ("{ +a=, +b=c }", 6, "expected a value after '='"),
            ("{ +a=\"abc }", 6, "unterminated string"),
            ("{ +a=\"a\\nb\" }", 8, "unknown escape"),
            ("{ a=b }", 3, "expected a property change"),
            ("{ +a=1, !a }", 9, "property 'a' is changed twice"),
            (
                "{ +a=\"1\" +b=2 }",
                10,
                "expected ',' and another property change",
            ),
            ("{ +a=1", 1, "this '{' is never closed"),
            ("{ !a", 1, "this '{' is never closed"),
        ] {
            let err = error(input);
            assert!(
                err.message.starts_with(message),
                "{input}: got {}",
                err.message
            );
            assert_eq!(err.line_col(), (1, col), "{input}: {err}");
        }
    }
}
