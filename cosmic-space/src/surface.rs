//! Surfaces: a layer of a particle, optionally a topic inside it (SPEC §2.3).
//!
//! ```
//! use cosmic_space::{Layer, Surface, Topic};
//!
//! let cli: Surface = "localhost@Shell+Topic<Cli>".parse()?;
//! assert_eq!(cli.layer, Layer::Shell);
//! assert_eq!(cli.topic, Some(Topic::Cli));
//! assert_eq!(cli.to_string(), "localhost@Shell+Topic<Cli>");
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::point::Point;
use crate::syntax::{Cursor, ParseError, Span};

/// The layers a wave passes through inside a particle, outermost first (SPEC §6).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Layer {
    /// Where waves enter and leave a star.
    Gravity,
    /// Security and bind routing.
    Field,
    /// Exchange bookkeeping and session topics.
    Shell,
    /// The boundary to another process.
    Portal,
    /// The host side of a guest.
    Host,
    /// The guest (wasm) side.
    Guest,
    /// The particle's driver: where it answers.
    #[default]
    Core,
}

impl Layer {
    /// Every layer, outermost first.
    pub const ALL: [Layer; 7] = [
        Layer::Gravity,
        Layer::Field,
        Layer::Shell,
        Layer::Portal,
        Layer::Host,
        Layer::Guest,
        Layer::Core,
    ];

    /// The name as written after `@`.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Gravity => "Gravity",
            Layer::Field => "Field",
            Layer::Shell => "Shell",
            Layer::Portal => "Portal",
            Layer::Host => "Host",
            Layer::Guest => "Guest",
            Layer::Core => "Core",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layer {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("layer", s, parse_layer)
    }
}

fn parse_layer(c: &mut Cursor<'_>) -> Result<Layer, ParseError> {
    let at = c.pos();
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric());
    Layer::ALL
        .into_iter()
        .find(|l| l.name() == name)
        .ok_or_else(|| {
            c.error_span(
                Span::new(at, c.pos()),
                "expected a layer: Gravity, Field, Shell, Portal, Host, Guest or Core",
            )
        })
}

/// A topic inside a layer: a session or conversation a wave belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Topic {
    /// `Topic<Cli>`: a CLI session.
    Cli,
    /// `Topic<Uuid>(…)`: a topic named by a uuid.
    Uuid(Uuid),
    /// `Topic<Path>(a:b:c)`: a topic named by a path of words.
    Path(Vec<String>),
    /// `Topic<*>`: any topic.
    Any,
    /// `Topic<!>`: no topic.
    Not,
}

impl Topic {
    fn parse(c: &mut Cursor<'_>) -> Result<Topic, ParseError> {
        c.expect("Topic<", "'Topic<'")?;
        let topic = if c.eat("Cli>") {
            Topic::Cli
        } else if c.eat("*>") {
            Topic::Any
        } else if c.eat("!>") {
            Topic::Not
        } else if c.eat("Uuid>(") {
            let at = c.pos();
            let text = c.take_while(|ch| ch.is_ascii_hexdigit() || ch == '-');
            let uuid = Uuid::parse_str(text).map_err(|e| {
                c.error_span(Span::new(at, c.pos()), format!("expected a uuid: {e}"))
            })?;
            c.expect(")", "')' after the uuid")?;
            Topic::Uuid(uuid)
        } else if c.eat("Path>(") {
            let mut words = Vec::new();
            loop {
                let at = c.pos();
                let word = c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
                if word.is_empty() {
                    return Err(c.error_at(at, "expected a path word ([A-Za-z0-9_-]+)"));
                }
                words.push(word.to_string());
                if !c.eat_char(':') {
                    break;
                }
            }
            c.expect(")", "')' to close the topic path")?;
            Topic::Path(words)
        } else {
            return Err(c.error("expected a topic: Cli>, Uuid>(…), Path>(…), *> or !>"));
        };
        Ok(topic)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Cli => f.write_str("Topic<Cli>"),
            Topic::Uuid(uuid) => write!(f, "Topic<Uuid>({uuid})"),
            Topic::Path(words) => write!(f, "Topic<Path>({})", words.join(":")),
            Topic::Any => f.write_str("Topic<*>"),
            Topic::Not => f.write_str("Topic<!>"),
        }
    }
}

/// `point@Layer[+Topic]`: where exactly in a particle a wave goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Surface {
    /// The particle.
    pub point: Point,
    /// The layer (`Core` when not written).
    pub layer: Layer,
    /// The topic, if any.
    pub topic: Option<Topic>,
}

impl Surface {
    /// The `Core` layer of `point`, with no topic.
    pub fn core(point: Point) -> Surface {
        Surface::new(point, Layer::Core)
    }

    /// `point@layer`.
    pub fn new(point: Point, layer: Layer) -> Surface {
        Surface {
            point,
            layer,
            topic: None,
        }
    }

    /// The same surface with `topic`.
    pub fn with_topic(mut self, topic: Topic) -> Surface {
        self.topic = Some(topic);
        self
    }

    /// The same point at another layer (the topic is kept).
    pub fn with_layer(mut self, layer: Layer) -> Surface {
        self.layer = layer;
        self
    }

    /// Parses a surface at the cursor; a bare point is its `Core` layer.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Surface, ParseError> {
        let point = Point::parse(c)?;
        let layer = if c.eat_char('@') {
            parse_layer(c)?
        } else {
            Layer::Core
        };
        let topic = if c.eat_char('+') {
            Some(Topic::parse(c)?)
        } else {
            None
        };
        Ok(Surface {
            point,
            layer,
            topic,
        })
    }
}

impl From<Point> for Surface {
    fn from(point: Point) -> Surface {
        Surface::core(point)
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.point, self.layer)?;
        if let Some(topic) = &self.topic {
            write!(f, "+{topic}")?;
        }
        Ok(())
    }
}

impl FromStr for Surface {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("surface", s, Surface::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces_round_trip() {
        for s in [
            "localhost:app@Core",
            "localhost@Shell+Topic<Cli>",
            "localhost@Field+Topic<Uuid>(67e55044-10b1-426f-9247-bb680e5fe0c8)",
            "localhost@Guest+Topic<Path>(a:b:c)",
            "localhost@Host+Topic<*>",
            "localhost@Portal+Topic<!>",
            "GLOBAL::executor@Core",
        ] {
            assert_eq!(s.parse::<Surface>().unwrap().to_string(), s);
        }
        assert_eq!(
            "localhost".parse::<Surface>().unwrap().to_string(),
            "localhost@Core"
        );
    }

    #[test]
    fn bad_surfaces_are_refused() {
        for s in [
            "localhost@Crust",
            "localhost@Core+Topic<Bad>",
            "localhost@Core+Topic<Uuid>(nope)",
            "localhost@Core+Topic<Path>()",
            "@Core",
        ] {
            assert!(s.parse::<Surface>().is_err(), "{s}");
        }
    }
}
