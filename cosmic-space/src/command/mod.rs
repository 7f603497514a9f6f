//! The command language operators and scripts speak (SPEC §10): [`Command`] and its parts, and
//! [`Script`]s of commands separated by `;`.
//!
//! A command is parsed into an AST and printed back canonically; points in commands are
//! [`PointVar`]s, so scripts may use `.`/`..` (the working point) and `${vars}` that the
//! executor resolves ([`Command::resolve`]) before it runs the command.
//!
//! ```
//! use cosmic_space::{Command, CreateStrategy};
//!
//! let command: Command = "create? localhost:app:worker-%<Mechtron>{ +config=x }".parse()?;
//! let Command::Create(create) = &command else { unreachable!() };
//! assert_eq!(create.strategy, CreateStrategy::Ensure);
//! assert_eq!(create.template.segment(7).as_deref(), Some("worker-7"));
//! assert_eq!(command.verb(), "create");
//! assert_eq!(command.to_string(), "create? localhost:app:worker-%<Mechtron>{ +config=x }");
//!
//! let err = "create localhost<Spaceship>".parse::<Command>().unwrap_err();
//! assert_eq!(err.message, "unknown kind 'Spaceship'");
//! assert_eq!(err.line_col(), (1, 18));
//! # Ok::<(), cosmic_space::ParseError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::access::GrantKind;
use crate::kind::Kind;
use crate::point::{Env, PointError, PointSeg, PointVar, VarSeg};
use crate::selector::Selector;
use crate::syntax::{Cursor, ParseError, Span, is_skewer};

mod property;
mod script;

pub use property::{PropertyChange, PropertyChanges};
pub use script::{Script, ScriptCommand};

use property::{parse_property_names, parse_value, write_property_names, write_value};

/// What `create` does when the point is already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CreateStrategy {
    /// `create`: fail (409) if the particle exists.
    #[default]
    Commit,
    /// `create?`: succeed without change if the particle exists with the same kind.
    Ensure,
    /// `create!`: replace the properties of an existing particle of the same kind.
    Override,
}

impl CreateStrategy {
    /// What follows `create` to select the strategy: `""`, `"?"` or `"!"`.
    pub fn suffix(self) -> &'static str {
        match self {
            CreateStrategy::Commit => "",
            CreateStrategy::Ensure => "?",
            CreateStrategy::Override => "!",
        }
    }
}

/// The point a `create` names: either exactly, or with a `%` in its last segment that the
/// executor replaces with the next sequence number under the parent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PointTemplate {
    /// The particle's point in full.
    Exact(PointVar),
    /// `parent:prefix%suffix`, e.g. `localhost:app:worker-%`.
    Sequence {
        /// The point the new particle goes under.
        parent: PointVar,
        /// The text before `%`: skewer case, beginning with a letter.
        prefix: String,
        /// The text after `%` (`[a-z0-9-]*`).
        suffix: String,
    },
}

impl PointTemplate {
    /// The last segment for sequence number `n` (`worker-%` → `worker-7`); `None` for an
    /// exact point.
    pub fn segment(&self, n: u64) -> Option<String> {
        match self {
            PointTemplate::Exact(_) => None,
            PointTemplate::Sequence { prefix, suffix, .. } => Some(format!("{prefix}{n}{suffix}")),
        }
    }

    /// Whether the last segment holds a `%`.
    pub fn is_sequence(&self) -> bool {
        matches!(self, PointTemplate::Sequence { .. })
    }

    /// Resolves the points in the template against `env` (see [`PointVar::resolve`]).
    pub fn resolve(&self, env: &Env) -> Result<PointTemplate, PointError> {
        Ok(match self {
            PointTemplate::Exact(point) => PointTemplate::Exact(resolve(point, env)?),
            PointTemplate::Sequence {
                parent,
                prefix,
                suffix,
            } => PointTemplate::Sequence {
                parent: resolve(parent, env)?,
                prefix: prefix.clone(),
                suffix: suffix.clone(),
            },
        })
    }

    /// Parses a template at the cursor.
    pub fn parse(c: &mut Cursor<'_>) -> Result<PointTemplate, ParseError> {
        let start = c.pos();
        let mut probe = c.clone();
        // Parse as an ordinary point first; a `%` stops it (or makes it fail) right there.
        let percent = match PointVar::parse(&mut probe) {
            Ok(point) if probe.peek() != Some('%') => {
                *c = probe;
                return Ok(PointTemplate::Exact(point));
            }
            Ok(_) => probe.pos(),
            Err(err)
                if c.input()
                    .get(err.span.start..)
                    .is_some_and(|r| r.starts_with('%')) =>
            {
                err.span.start
            }
            Err(err) => return Err(err),
        };
        let input = c.input();
        let before = input.get(start..percent).unwrap_or_default();
        let Some(colon) = before.rfind(':').map(|i| start + i) else {
            return Err(c.error_at(
                percent,
                "a '%' needs a parent point before it (e.g. localhost:app:worker-%)",
            ));
        };
        if input[..colon].ends_with(':') {
            return Err(c.error_at(
                percent,
                "a '%' needs a parent point before it (e.g. localhost:app:worker-%)",
            ));
        }
        let prefix = &input[colon + 1..percent];
        if prefix.starts_with('/') || before.contains(":/") {
            return Err(c.error_at(percent, "'%' cannot stand in a file-system path"));
        }
        if !is_skewer(prefix) {
            return Err(c.error_span(
                Span::new(colon + 1, percent + 1),
                "a numbered segment begins with a lower-case letter and is skewer case (e.g. worker-%)",
            ));
        }
        // The parent is everything before the last `:`.
        let mut parent_cursor = Cursor::new("point", &input[..colon]);
        parent_cursor.reset(start);
        let parent = PointVar::parse(&mut parent_cursor)
            .and_then(|parent| {
                parent_cursor.expect_end("the parent point")?;
                Ok(parent)
            })
            .map_err(|err| c.error_span(err.span, err.message))?;
        if matches!(
            parent.tail().last(),
            Some(VarSeg::Seg(PointSeg::Version(_)))
        ) {
            return Err(c.error_at(colon, "only ':/' (a file system) may follow a version"));
        }
        c.reset(percent + 1);
        let suffix = c
            .take_while(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            .to_string();
        match c.peek() {
            Some('%') => Err(c.error("only one '%' may stand in a segment")),
            Some(':') => Err(c.error("'%' may stand only in the last segment")),
            Some(ch) if ch.is_alphanumeric() || matches!(ch, '_' | '.') => {
                Err(c.error("a numbered segment is skewer case ([a-z0-9-] around the '%')"))
            }
            _ => Ok(PointTemplate::Sequence {
                parent,
                prefix: prefix.to_string(),
                suffix,
            }),
        }
    }
}

impl fmt::Display for PointTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointTemplate::Exact(point) => point.fmt(f),
            PointTemplate::Sequence {
                parent,
                prefix,
                suffix,
            } => write!(f, "{parent}:{prefix}%{suffix}"),
        }
    }
}

impl FromStr for PointTemplate {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("point template", s, PointTemplate::parse)
    }
}

impl From<PointVar> for PointTemplate {
    fn from(point: PointVar) -> PointTemplate {
        PointTemplate::Exact(point)
    }
}

/// `create`: make a particle of a kind at a point, with initial properties.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Create {
    /// What to do when the point is taken.
    pub strategy: CreateStrategy,
    /// Where the particle goes.
    pub template: PointTemplate,
    /// Its kind.
    pub kind: Kind,
    /// Its initial properties (`{ +config=…, +@locked=x }`); empty when none were written.
    pub properties: PropertyChanges,
}

impl fmt::Display for Create {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "create{} {}<{}>",
            self.strategy.suffix(),
            self.template,
            self.kind
        )?;
        if !self.properties.is_empty() {
            write!(f, "{}", self.properties)?;
        }
        Ok(())
    }
}

/// One command of SPEC §10.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// `create[?|!] POINT<Kind>{ … }`.
    Create(Create),
    /// `publish ^[ FILE ]-> POINT`: upload the local zip `FILE` and unpack it as the bundle at
    /// `POINT`.
    Publish {
        /// The local file the CLI uploads (a transfer), as written.
        file: String,
        /// The bundle's point (`…:repo:hello:1.0.0`).
        point: PointVar,
    },
    /// `select SELECTOR`: list the particles that match.
    Select {
        /// What to match.
        selector: Selector,
    },
    /// `set POINT{ +k=v, +@k=v, !k }`: change properties.
    Set {
        /// The particle.
        point: PointVar,
        /// The changes (never empty).
        properties: PropertyChanges,
    },
    /// `get POINT{ a, b }` (or `get POINT` for all properties).
    Get {
        /// The particle.
        point: PointVar,
        /// The properties asked for; empty means all of them.
        names: Vec<String>,
    },
    /// `read POINT`: the particle's content (a file's bytes).
    Read {
        /// The particle.
        point: PointVar,
    },
    /// `delete POINT` (refused if it has children) or `delete! POINT` (deletes the subtree).
    Delete {
        /// The particle.
        point: PointVar,
        /// `!`: delete the children too.
        force: bool,
    },
    /// `grant KIND on SELECTOR to SELECTOR`.
    Grant {
        /// What is granted.
        kind: GrantKind,
        /// The particles it applies to.
        on: Selector,
        /// The agents it applies to.
        to: Selector,
    },
    /// `revoke ID`: remove a grant by the id `access` lists.
    Revoke {
        /// The grant's id.
        id: u64,
    },
    /// `access POINT`: list the grants that apply to a particle.
    Access {
        /// The particle.
        point: PointVar,
    },
    /// `subscribe SELECTOR`: the agent (a particle) receives what the channels it selects
    /// publish and the lifecycle events of the particles it selects (SPEC §18).
    Subscribe {
        /// What to receive from.
        selector: Selector,
    },
    /// `unsubscribe SELECTOR`: undoes a `subscribe` of the same selector.
    Unsubscribe {
        /// The selector subscribed to.
        selector: Selector,
    },
    /// `chown SELECTOR to POINT`: give the matching particles a new owner.
    Chown {
        /// The particles.
        on: Selector,
        /// The new owner (an agent's point).
        owner: PointVar,
    },
}

/// What a command acts on, for the executor's access checks and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandTarget<'a> {
    /// A single particle.
    Point(&'a PointVar),
    /// The particle `create` makes.
    Template(&'a PointTemplate),
    /// The particles a selector matches (`select`, `grant … on`, `chown`).
    Selector(&'a Selector),
    /// A grant, by id (`revoke`).
    Grant(u64),
}

/// Every command word, for "unknown command" messages.
const VERBS: &str = "create, publish, select, set, get, read, delete, grant, revoke, access, chown, subscribe, unsubscribe";

impl Command {
    /// The command word without `?`/`!`: `"create"`, `"publish"`, `"select"`, …
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Create(_) => "create",
            Command::Publish { .. } => "publish",
            Command::Select { .. } => "select",
            Command::Set { .. } => "set",
            Command::Get { .. } => "get",
            Command::Read { .. } => "read",
            Command::Delete { .. } => "delete",
            Command::Grant { .. } => "grant",
            Command::Revoke { .. } => "revoke",
            Command::Access { .. } => "access",
            Command::Chown { .. } => "chown",
            Command::Subscribe { .. } => "subscribe",
            Command::Unsubscribe { .. } => "unsubscribe",
        }
    }

    /// What the command acts on.
    pub fn target(&self) -> CommandTarget<'_> {
        match self {
            Command::Create(create) => CommandTarget::Template(&create.template),
            Command::Publish { point, .. }
            | Command::Set { point, .. }
            | Command::Get { point, .. }
            | Command::Read { point }
            | Command::Delete { point, .. }
            | Command::Access { point } => CommandTarget::Point(point),
            Command::Select { selector }
            | Command::Subscribe { selector }
            | Command::Unsubscribe { selector } => CommandTarget::Selector(selector),
            Command::Grant { on, .. } | Command::Chown { on, .. } => CommandTarget::Selector(on),
            Command::Revoke { id } => CommandTarget::Grant(*id),
        }
    }

    /// The local files the client must upload with the command (`publish ^[ FILE ]->`).
    pub fn transfers(&self) -> Vec<&str> {
        match self {
            Command::Publish { file, .. } => vec![file.as_str()],
            _ => Vec::new(),
        }
    }

    /// The same command with every point resolved against `env` (variables and `.`/`..`
    /// replaced), so each [`PointVar`] in it is a plain point.
    pub fn resolve(&self, env: &Env) -> Result<Command, PointError> {
        Ok(match self {
            Command::Create(create) => Command::Create(Create {
                template: create.template.resolve(env)?,
                ..create.clone()
            }),
            Command::Publish { file, point } => Command::Publish {
                file: file.clone(),
                point: resolve(point, env)?,
            },
            Command::Set { point, properties } => Command::Set {
                point: resolve(point, env)?,
                properties: properties.clone(),
            },
            Command::Get { point, names } => Command::Get {
                point: resolve(point, env)?,
                names: names.clone(),
            },
            Command::Read { point } => Command::Read {
                point: resolve(point, env)?,
            },
            Command::Delete { point, force } => Command::Delete {
                point: resolve(point, env)?,
                force: *force,
            },
            Command::Access { point } => Command::Access {
                point: resolve(point, env)?,
            },
            Command::Chown { on, owner } => Command::Chown {
                on: on.clone(),
                owner: resolve(owner, env)?,
            },
            Command::Select { .. }
            | Command::Grant { .. }
            | Command::Revoke { .. }
            | Command::Subscribe { .. }
            | Command::Unsubscribe { .. } => self.clone(),
        })
    }

    /// Parses one command at the cursor, without the `;` that ends it in a script. The cursor
    /// stops right after the command's last token.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Command, ParseError> {
        let start = c.pos();
        let word = c.take_while(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-'));
        let verb = match word {
            "create" | "publish" | "select" | "set" | "get" | "read" | "delete" | "grant"
            | "revoke" | "access" | "chown" | "subscribe" | "unsubscribe" => word,
            "" => return Err(c.error(format!("expected a command: one of {VERBS}"))),
            other => {
                let span = Span::new(start, c.pos());
                let lower = other.to_lowercase();
                let message = if VERBS.split(", ").any(|v| v == lower) {
                    format!("commands are lower case: write '{lower}'")
                } else {
                    format!("unknown command '{other}': expected one of {VERBS}")
                };
                return Err(c.error_span(span, message));
            }
        };
        // `create?`, `create!` and `delete!` are one word with their mark.
        let mark = match c.peek() {
            Some(ch @ ('!' | '?')) => {
                if !matches!((verb, ch), ("create", _) | ("delete", '!')) {
                    return Err(c.error(format!(
                        "there is no '{verb}{ch}': only create?, create! and delete! exist"
                    )));
                }
                c.bump();
                Some(ch)
            }
            _ => None,
        };
        match verb {
            "create" => {
                require_ws(c, "the point to create")?;
                let template = PointTemplate::parse(c)?;
                c.skip_ws();
                c.expect(
                    "<",
                    "'<' and the kind of the particle (e.g. localhost:app<App>)",
                )?;
                c.skip_ws();
                let kind = Kind::parse(c)?;
                c.skip_ws();
                c.expect(">", "'>' to close the kind")?;
                let properties = if peek_after_ws(c) == Some('{') {
                    c.skip_ws();
                    PropertyChanges::parse(c)?
                } else {
                    PropertyChanges::new()
                };
                let strategy = match mark {
                    Some('?') => CreateStrategy::Ensure,
                    Some('!') => CreateStrategy::Override,
                    _ => CreateStrategy::Commit,
                };
                Ok(Command::Create(Create {
                    strategy,
                    template,
                    kind,
                    properties,
                }))
            }
            "publish" => {
                require_ws(c, "'^[ FILE ]->' and the bundle's point")?;
                c.expect(
                    "^[",
                    "'^[' and the local file to upload (e.g. publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0)",
                )?;
                c.skip_ws();
                let file = parse_value(c, &[']', '\n'], "the name of the file to upload", false)?;
                c.skip_ws();
                c.expect("]", "']' after the file name")?;
                c.skip_ws();
                c.expect("->", "'->' and the bundle's point")?;
                c.skip_ws();
                let point = parse_point(c)?;
                Ok(Command::Publish { file, point })
            }
            "select" => {
                require_ws(c, "a selector")?;
                Ok(Command::Select {
                    selector: Selector::parse(c)?,
                })
            }
            "subscribe" => {
                require_ws(c, "a selector of the channels and particles to hear from")?;
                Ok(Command::Subscribe {
                    selector: Selector::parse(c)?,
                })
            }
            "unsubscribe" => {
                require_ws(c, "the selector subscribed to")?;
                Ok(Command::Unsubscribe {
                    selector: Selector::parse(c)?,
                })
            }
            "set" => {
                require_ws(c, "the point whose properties to set")?;
                let point = parse_point(c)?;
                c.skip_ws();
                if c.peek() != Some('{') {
                    return Err(c.error("expected '{' and the properties to set"));
                }
                let open = c.pos();
                let properties = PropertyChanges::parse(c)?;
                if properties.is_empty() {
                    return Err(c.error_span(
                        Span::new(open, c.pos()),
                        "expected at least one property to set",
                    ));
                }
                Ok(Command::Set { point, properties })
            }
            "get" => {
                require_ws(c, "the point whose properties to get")?;
                let point = parse_point(c)?;
                let names = if peek_after_ws(c) == Some('{') {
                    c.skip_ws();
                    parse_property_names(c)?
                } else {
                    Vec::new()
                };
                Ok(Command::Get { point, names })
            }
            "read" => {
                require_ws(c, "the point to read")?;
                Ok(Command::Read {
                    point: parse_point(c)?,
                })
            }
            "delete" => {
                require_ws(c, "the point to delete")?;
                Ok(Command::Delete {
                    point: parse_point(c)?,
                    force: mark == Some('!'),
                })
            }
            "grant" => {
                require_ws(
                    c,
                    "what to grant: Super, a privilege or a mask such as +cSd-RwX",
                )?;
                let at = c.pos();
                let kind = GrantKind::parse(c)?;
                // `cSd-RwX` reads as the privilege `c` followed by junk: name the real mistake.
                if matches!(kind, GrantKind::Privilege(_))
                    && c.peek().is_some_and(|ch| !ch.is_whitespace())
                {
                    let end = at + c.rest().find(char::is_whitespace).unwrap_or(c.rest().len());
                    return Err(c.error_span(
                        Span::new(at, c.pos().max(end)),
                        "expected what to grant: Super, a privilege (e.g. property:email:read) or a mask that begins with '+' or '&' (e.g. +cSd-RwX)",
                    ));
                }
                keyword(c, "on", "the particles it applies to")?;
                let on = Selector::parse(c)?;
                keyword(c, "to", "the agents it is granted to")?;
                let to = Selector::parse(c)?;
                Ok(Command::Grant { kind, on, to })
            }
            "revoke" => {
                require_ws(c, "the id of the grant to revoke")?;
                let at = c.pos();
                let word = c.take_while(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.'));
                let span = Span::new(at, c.pos());
                if word.is_empty() || !word.chars().all(|ch| ch.is_ascii_digit()) {
                    return Err(
                        c.error_span(span, "expected a grant id: a number, as listed by 'access'")
                    );
                }
                let id = word
                    .parse::<u64>()
                    .map_err(|_| c.error_span(span, "grant id is too large"))?;
                Ok(Command::Revoke { id })
            }
            "access" => {
                require_ws(c, "the point whose grants to list")?;
                Ok(Command::Access {
                    point: parse_point(c)?,
                })
            }
            _ => {
                require_ws(c, "a selector of the particles to give away")?;
                let on = Selector::parse(c)?;
                keyword(c, "to", "the point of the new owner")?;
                let owner = parse_point(c)?;
                Ok(Command::Chown { on, owner })
            }
        }
    }
}

fn resolve(point: &PointVar, env: &Env) -> Result<PointVar, PointError> {
    Ok(PointVar::from(point.resolve(env)?))
}

/// A point of a command other than `create`, where a `%` gets a message of its own.
fn parse_point(c: &mut Cursor<'_>) -> Result<PointVar, ParseError> {
    let result = PointVar::parse(c);
    let at = match &result {
        Ok(_) => c.pos(),
        Err(err) => err.span.start,
    };
    if c.input()
        .get(at..)
        .is_some_and(|rest| rest.starts_with('%'))
    {
        return Err(c.error_at(
            at,
            "'%' (the next sequence number) may only be used in the point of a create",
        ));
    }
    result
}

/// The next character after any white space, without moving the cursor.
fn peek_after_ws(c: &Cursor<'_>) -> Option<char> {
    c.rest().trim_start().chars().next()
}

/// Skips the white space that must separate a command word from what follows (`what`).
fn require_ws(c: &mut Cursor<'_>, what: &str) -> Result<(), ParseError> {
    let before = c.pos();
    c.skip_ws();
    if c.at_end() || c.peek() == Some(';') {
        Err(c.error(format!("expected {what}")))
    } else if c.pos() == before {
        Err(c.error(format!("expected white space and then {what}")))
    } else {
        Ok(())
    }
}

/// White space, the lower-case `word`, white space: the `on` and `to` of `grant` and `chown`.
fn keyword(c: &mut Cursor<'_>, word: &str, then: &str) -> Result<(), ParseError> {
    let before = c.pos();
    c.skip_ws();
    let at = c.pos();
    let found = c.take_while(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-'));
    let span = Span::new(at, c.pos());
    if found != word {
        return Err(c.error_span(span, format!("expected '{word}' and {then}")));
    }
    if at == before {
        return Err(c.error_at(at, format!("expected white space before '{word}'")));
    }
    require_ws(c, then)
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Create(create) => create.fmt(f),
            Command::Publish { file, point } => {
                f.write_str("publish ^[ ")?;
                write_value(f, file, &[']', '\n'])?;
                write!(f, " ]-> {point}")
            }
            Command::Select { selector } => write!(f, "select {selector}"),
            Command::Set { point, properties } => write!(f, "set {point}{properties}"),
            Command::Get { point, names } => {
                write!(f, "get {point}")?;
                if names.is_empty() {
                    Ok(())
                } else {
                    write_property_names(f, names)
                }
            }
            Command::Read { point } => write!(f, "read {point}"),
            Command::Delete { point, force } => {
                write!(f, "delete{} {point}", if *force { "!" } else { "" })
            }
            Command::Grant { kind, on, to } => write!(f, "grant {kind} on {on} to {to}"),
            Command::Revoke { id } => write!(f, "revoke {id}"),
            Command::Access { point } => write!(f, "access {point}"),
            Command::Chown { on, owner } => write!(f, "chown {on} to {owner}"),
            Command::Subscribe { selector } => write!(f, "subscribe {selector}"),
            Command::Unsubscribe { selector } => write!(f, "unsubscribe {selector}"),
        }
    }
}

/// Parses one command; surrounding white space, `#` comments and one trailing `;` are allowed
/// (`starlane exec 'create localhost<Space>'`). Several commands are a [`Script`].
impl FromStr for Command {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("command", s, |c| {
            c.skip_ws_and_comments();
            let command = Command::parse(c)?;
            c.skip_ws_and_comments();
            if c.eat_char(';') {
                c.skip_ws_and_comments();
                if !c.at_end() {
                    return Err(
                        c.error("expected the end of the command: several commands make a script")
                    );
                }
            } else if !c.at_end() {
                return Err(c.error("expected ';' or the end of the command"));
            }
            Ok(command)
        })
    }
}

#[cfg(test)]
mod tests;
