//! The lexical machinery every grammar in this crate shares: a [`Cursor`] over the input and
//! [`ParseError`], which carries a span and renders like rustc.
//!
//! Each grammar (points, kinds, selectors, commands, binds, mechtron documents) is a small
//! hand-written recursive-descent parser over a `Cursor`. Hand-written parsers keep the error
//! messages precise ("expected a skewer-case base segment") and point parsing fast.

use std::fmt;

/// A byte range of the parsed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character (equal to `start` for a point-like span).
    pub end: usize,
}

impl Span {
    /// A span covering `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// An empty span at `at`.
    pub fn at(at: usize) -> Self {
        Span { start: at, end: at }
    }
}

/// An error in some text given to a parser: where, and what was expected there.
///
/// `Display` renders it the way rustc renders a diagnostic:
///
/// ```text
/// error: expected a skewer-case base segment ([a-z][a-z0-9-]*)
///  --> point:1:11
///   |
/// 1 | localhost:Base
///   |           ^ found 'B'
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What was being parsed ("point", "command", "bind", ...).
    pub what: &'static str,
    /// What the parser expected at `span` (or what was wrong there).
    pub message: String,
    /// Where in `input` the problem is.
    pub span: Span,
    /// The text that was parsed, kept so the error can show the offending line.
    pub input: String,
    /// The file the text came from, if any; shown instead of `what` in the location line.
    pub file: Option<String>,
}

impl ParseError {
    /// A new error about `input` at `span`.
    pub fn new(what: &'static str, input: &str, span: Span, message: impl Into<String>) -> Self {
        ParseError {
            what,
            message: message.into(),
            span,
            input: input.to_string(),
            file: None,
        }
    }

    /// The same error, located in `file` (rendered as `--> file:line:col`).
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// 1-based line and column (in characters) of the start of the span.
    pub fn line_col(&self) -> (usize, usize) {
        line_col(&self.input, self.span.start)
    }

    /// What was found at the error position, for the caret label.
    fn found(&self) -> String {
        let start = self.span.start.min(self.input.len());
        match self.input.get(start..).and_then(|rest| rest.chars().next()) {
            None => "found end of input".to_string(),
            Some('\n') => "found end of line".to_string(),
            Some(c) => format!("found {c:?}"),
        }
    }
}

/// 1-based line and column (counted in characters) of byte offset `at` in `input`.
pub fn line_col(input: &str, at: usize) -> (usize, usize) {
    let at = floor_char_boundary(input, at.min(input.len()));
    let before = &input[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = input[line_start..at].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_col();
        let start = floor_char_boundary(&self.input, self.span.start.min(self.input.len()));
        let line_start = self.input[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = self.input[start..]
            .find('\n')
            .map(|i| start + i)
            .unwrap_or(self.input.len());
        let text = &self.input[line_start..line_end];
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        // Tabs keep their width in the caret line so the caret lands under the right character.
        let lead: String = self.input[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let end = floor_char_boundary(&self.input, self.span.end.min(line_end).max(start));
        let width = self.input[start..end].chars().count().max(1);
        writeln!(f, "error: {}", self.message)?;
        let origin = self.file.as_deref().unwrap_or(self.what);
        writeln!(f, "{pad}--> {origin}:{line}:{col}")?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{line} | {text}")?;
        write!(f, "{pad} | {lead}{} {}", "^".repeat(width), self.found())
    }
}

impl std::error::Error for ParseError {}

/// A position in some input, with the primitives the grammars are built from.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    input: &'a str,
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `input`; `what` names the grammar in errors.
    pub fn new(what: &'static str, input: &'a str) -> Self {
        Cursor {
            input,
            pos: 0,
            what,
        }
    }

    /// The whole input.
    pub fn input(&self) -> &'a str {
        self.input
    }

    /// Byte offset of the cursor.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Moves the cursor back to `pos` (from [`Cursor::pos`]) to try another alternative.
    pub fn reset(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// What is left of the input.
    pub fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    /// True when nothing is left.
    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// The next character, without consuming it.
    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character after the next one.
    pub fn peek2(&self) -> Option<char> {
        let mut chars = self.rest().chars();
        chars.next();
        chars.next()
    }

    /// Whether the rest starts with `s`.
    pub fn starts_with(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    /// Consumes and returns the next character.
    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes `s` if the rest starts with it.
    pub fn eat(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Consumes the next character if it is `c`.
    pub fn eat_char(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `s` or fails with "expected `expected`".
    pub fn expect(&mut self, s: &str, expected: &str) -> Result<(), ParseError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.error(format!("expected {expected}")))
        }
    }

    /// Consumes the longest run of characters satisfying `pred` and returns it.
    pub fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|&(_, c)| !pred(c))
            .map(|(i, _)| i)
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.input[start..self.pos]
    }

    /// Skips spaces, tabs and newlines.
    pub fn skip_ws(&mut self) {
        self.take_while(char::is_whitespace);
    }

    /// Skips white space and `#` comments that run to the end of the line.
    pub fn skip_ws_and_comments(&mut self) {
        loop {
            self.skip_ws();
            if self.peek() == Some('#') {
                self.take_while(|c| c != '\n');
            } else {
                break;
            }
        }
    }

    /// An error at the cursor.
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_span(Span::at(self.pos), message)
    }

    /// An error at `at`.
    pub fn error_at(&self, at: usize, message: impl Into<String>) -> ParseError {
        self.error_span(Span::at(at), message)
    }

    /// An error covering `span`.
    pub fn error_span(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.what, self.input, span, message)
    }

    /// Fails unless the whole input has been consumed.
    pub fn expect_end(&self, after: &str) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error(format!("unexpected input after {after}")))
        }
    }

    /// Runs `parse` over all of `input`, failing if anything is left over.
    pub fn parse_all<T>(
        what: &'static str,
        input: &'a str,
        parse: impl FnOnce(&mut Cursor<'a>) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        let mut cursor = Cursor::new(what, input);
        let value = parse(&mut cursor)?;
        cursor.expect_end(what)?;
        Ok(value)
    }
}

/// `[a-z][a-z0-9-]*`, the case every base segment, variable-free name and tag uses.
pub fn is_skewer(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// `[A-Z][A-Za-z0-9]*`, the case of kinds, layers and method names.
pub fn is_camel(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('A'..='Z')) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Declares a fieldless enum whose variants are written as their own names (`Wasm`, `Get`,
/// `Text`), with `NAMES`, `name()`, `from_name()` and a `Display` that prints the name.
macro_rules! word_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every variant's name, as written.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The name as written.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant)),+
                }
            }

            /// The variant called `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($variant) => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use word_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let err = ParseError::new("point", "localhost:Base", Span::at(10), "expected a base");
        assert_eq!(
            err.to_string(),
            "error: expected a base\n --> point:1:11\n  |\n1 | localhost:Base\n  |           ^ found 'B'"
        );
    }

    #[test]
    fn renders_the_right_line_of_a_multi_line_input() {
        let err = ParseError::new("script", "a;\nbb x;\n", Span::new(6, 7), "expected ';'");
        assert_eq!(err.line_col(), (2, 4));
        assert!(err.to_string().contains("2 | bb x;\n  |    ^ found 'x'"));
    }

    #[test]
    fn end_of_input_is_named() {
        let err = ParseError::new("point", "", Span::at(0), "expected a point");
        assert!(err.to_string().ends_with("^ found end of input"));
    }

    #[test]
    fn a_span_past_the_end_or_inside_a_character_does_not_panic() {
        let err = ParseError::new("x", "héllo", Span::new(2, 99), "bad");
        let _ = err.to_string();
        let err = ParseError::new("x", "", Span::new(5, 1), "bad");
        let _ = err.to_string();
    }
}
