//! Scripts (SPEC §10): commands separated by `;`, with `#` comments to the end of the line and
//! blank lines anywhere between commands.
//!
//! ```
//! use cosmic_space::Script;
//!
//! let script: Script = "# set up\ncreate localhost<Space>;\n\nselect localhost:**;\n".parse()?;
//! assert_eq!(script.len(), 2);
//! assert_eq!(script.commands()[1].line, 4);
//! assert_eq!(script.to_string(), "create localhost<Space>;\nselect localhost:**;\n");
//!
//! let err = "select localhost;\nselect localhost\nread localhost;".parse::<Script>().unwrap_err();
//! assert_eq!(err.line_col(), (2, 17));
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Command;
use crate::syntax::{Cursor, ParseError, Span, line_col};

/// A command of a script and where it was written, so a failure can name its line.
///
/// Equality compares the commands only: where a command was written is not part of what it
/// means (so a script equals the script its canonical form parses to).
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct ScriptCommand {
    /// The command.
    pub command: Command,
    /// The bytes of the script it was parsed from (without its `;`).
    #[serde(with = "span_serde")]
    pub span: Span,
    /// The 1-based line it begins on.
    pub line: usize,
}

impl PartialEq for ScriptCommand {
    fn eq(&self, other: &ScriptCommand) -> bool {
        self.command == other.command
    }
}

/// A parsed script: its commands in order, each with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Script {
    commands: Vec<ScriptCommand>,
}

impl Script {
    /// The commands in the order they run.
    pub fn commands(&self) -> &[ScriptCommand] {
        &self.commands
    }

    /// How many commands the script holds.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True for a script of only comments and blank lines.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The commands without their positions.
    pub fn iter(&self) -> impl Iterator<Item = &Command> + '_ {
        self.commands.iter().map(|c| &c.command)
    }

    /// Parses a whole script at the cursor, up to the end of the input. The last command's `;`
    /// may be left out.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Script, ParseError> {
        let mut commands = Vec::new();
        // Lines are counted as the cursor moves on, so a long script parses in linear time.
        let (mut counted_to, mut line) = (c.pos(), line_col(c.input(), c.pos()).0);
        loop {
            c.skip_ws_and_comments();
            if c.at_end() {
                break;
            }
            let start = c.pos();
            let command = Command::parse(c)?;
            let end = c.pos();
            line += c.input()[counted_to..start].matches('\n').count();
            counted_to = start;
            commands.push(ScriptCommand {
                command,
                span: Span::new(start, end),
                line,
            });
            c.skip_ws_and_comments();
            if c.eat_char(';') || c.at_end() {
                continue;
            }
            // A missing `;`: point at the stray token when it is on the same line, else at the
            // end of the command, where the `;` belongs.
            let same_line = !c.input()[end..c.pos()].contains('\n');
            let at = if same_line { c.pos() } else { end };
            return Err(c.error_at(at, "expected ';' after the command"));
        }
        Ok(Script { commands })
    }
}

impl FromIterator<Command> for Script {
    /// A script of `commands`, without positions (their spans are empty, their lines 0).
    fn from_iter<I: IntoIterator<Item = Command>>(commands: I) -> Script {
        Script {
            commands: commands
                .into_iter()
                .map(|command| ScriptCommand {
                    command,
                    span: Span::default(),
                    line: 0,
                })
                .collect(),
        }
    }
}

/// One command per line, each ending with `;` (comments are not kept).
impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for command in &self.commands {
            writeln!(f, "{};", command.command)?;
        }
        Ok(())
    }
}

impl FromStr for Script {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("script", s, Script::parse)
    }
}

/// `Span` as a `(start, end)` pair.
mod span_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::syntax::Span;

    pub(super) fn serialize<S: Serializer>(span: &Span, s: S) -> Result<S::Ok, S::Error> {
        (span.start, span.end).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let (start, end) = <(usize, usize)>::deserialize(d)?;
        Ok(Span::new(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(s: &str) -> Script {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn commands_keep_their_spans_and_lines() {
        let text = "# a comment\n\ncreate localhost<Space>;  # trailing\n  select localhost:**\n;read localhost";
        let parsed = script(text);
        let found: Vec<(&str, usize)> = parsed
            .commands()
            .iter()
            .map(|c| (&text[c.span.start..c.span.end], c.line))
            .collect();
        assert_eq!(
            found,
            vec![
                ("create localhost<Space>", 3),
                ("select localhost:**", 4),
                ("read localhost", 5)
            ]
        );
    }

    #[test]
    fn empty_scripts_are_allowed() {
        assert!(script("").is_empty());
        assert!(script("  \n# only a comment\n\n").is_empty());
    }

    #[test]
    fn prints_one_command_per_line_and_reads_back() {
        let parsed = script("create localhost<Space>\n;select localhost:**;delete! localhost:app");
        let printed = parsed.to_string();
        assert_eq!(
            printed,
            "create localhost<Space>;\nselect localhost:**;\ndelete! localhost:app;\n"
        );
        assert_eq!(script(&printed), parsed);
        let built: Script = parsed.iter().cloned().collect();
        assert_eq!(built, parsed);
    }

    #[test]
    fn a_missing_semicolon_is_reported_where_it_belongs() {
        // Next command on the next line: the `;` belongs at the end of line 1.
        let err = "select localhost\nread localhost;"
            .parse::<Script>()
            .unwrap_err();
        assert_eq!(
            (err.line_col(), err.message.as_str()),
            ((1, 17), "expected ';' after the command")
        );
        // Something stray on the same line: point at it.
        let err = "select localhost:** read localhost"
            .parse::<Script>()
            .unwrap_err();
        assert_eq!(err.line_col(), (1, 21));
    }

    #[test]
    fn errors_inside_a_command_name_their_line() {
        let err = "create localhost<Space>;\n\ncreate localhost:app<Spaceship>;"
            .parse::<Script>()
            .unwrap_err();
        assert_eq!(err.line_col(), (3, 22));
        assert_eq!(err.message, "unknown kind 'Spaceship'");
        assert!(err.to_string().contains("--> script:3:22"), "{err}");
    }

    #[test]
    fn stray_semicolons_are_errors() {
        let err = "select localhost;;".parse::<Script>().unwrap_err();
        assert_eq!(err.line_col(), (1, 18));
    }
}
