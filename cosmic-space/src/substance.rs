//! Substance: the typed body of a wave (SPEC §5.2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::syntax::{Cursor, ParseError, Span};

macro_rules! substance_kinds {
    ($($(#[$vmeta:meta])* $variant:ident),+ $(,)?) => {
        /// The name of a kind of substance, as written in bind filters (`-[ Text ]->`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum SubstanceKind {
            $($(#[$vmeta])* $variant),+
        }

        impl SubstanceKind {
            /// Every substance kind name.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The name as written.
            pub fn name(self) -> &'static str {
                match self {
                    $(SubstanceKind::$variant => stringify!($variant)),+
                }
            }

            /// The kind called `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($variant) => Some(SubstanceKind::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

substance_kinds!(
    /// No body.
    Empty,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Bin,
    /// A boolean.
    Bool,
    /// A signed integer.
    Int,
    /// A JSON value.
    Json,
    /// A point.
    Point,
    /// A surface.
    Surface,
    /// A list of substances.
    List,
    /// A map from strings to substances.
    Map,
    /// A particle's stub (point, kind, status).
    Stub,
    /// A particle's details (stub and properties).
    Details,
    /// A status.
    Status,
    /// A parsed command.
    Command,
    /// A command as text, with any files it carries.
    RawCommand,
    /// A list of errors.
    Errors,
    /// An access token.
    Token,
    /// A whole wave.
    Wave,
    /// An HTTP request.
    HttpRequest,
    /// An HTTP response.
    HttpResponse,
);

impl SubstanceKind {
    /// Parses a substance kind name at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<SubstanceKind, ParseError> {
        let at = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
        SubstanceKind::from_name(name).ok_or_else(|| {
            c.error_span(
                Span::new(at, c.pos()),
                format!(
                    "expected a substance kind: one of {}",
                    SubstanceKind::NAMES.join(", ")
                ),
            )
        })
    }
}

impl fmt::Display for SubstanceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SubstanceKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("substance kind", s, SubstanceKind::parse)
    }
}
