//! Mechtron documents (`.mechtron`, SPEC §8): which wasm a mechtron runs, which mechtron type
//! inside it, and the limits of each call into it (SPEC §11.2).
//!
//! ```text
//! mechtron := "Mechtron(version=" version ")" "{" { section } "}"
//! section  := "Wasm" "{" { property } "}" | "Limits" "{" { property } "}"
//!           | "Subscribe" "{" { "+" selector ";" } "}"
//! property := "+" name "=" value ";"
//! ```
//!
//! `Wasm` takes `+bin` (a point, where `${bundle}` is the bundle holding the document) and
//! `+name` (skewer case); both are required. `Limits` is optional and takes `+fuel` (an
//! instruction budget per call, > 0), `+memory` (a size: bytes, or with a `KiB`/`MiB`/`GiB`
//! suffix — powers of 1024 — or `KB`/`MB`/`GB` — powers of 1000 — from 64KiB to 4GiB) and
//! `+timeout` (a wall-clock bound per call: a number and `ms`, `s` or `m`, from 1ms to 24h; a
//! call still running when it passes is stopped and answered with 500).
//! `Subscribe` is optional and lists selectors the mechtron subscribes to when it starts (SPEC
//! §18: `Subscribe { +localhost:chat:**<Channel>; }`). White space and `#` comments may stand
//! between any two tokens.
//!
//! ```
//! use cosmic_space::{MechtronConfig, Point};
//!
//! let config: MechtronConfig = "
//!     Mechtron(version=1.0.0) {
//!       Wasm {
//!         +bin=${bundle}:/wasm/hello.wasm;
//!         +name=hello;
//!       }
//!     }".parse()?;
//! let bundle: Point = "repo:hello:1.0.0".parse()?;
//! assert_eq!(config.wasm_point(&bundle)?.to_string(), "repo:hello:1.0.0:/wasm/hello.wasm");
//! assert_eq!(config.name, "hello");
//! assert_eq!(config.limits.memory(), 64 * 1024 * 1024);
//! # Ok::<(), cosmic_space::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::bind::{parse_header, point_vars, unclosed};
use crate::point::{Env, Point, PointError, PointVar};
use crate::selector::Selector;
use crate::syntax::{Cursor, ParseError, Span, is_skewer};

/// A parsed `.mechtron` document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MechtronConfig {
    /// The version of the document language (1.x.y).
    pub version: Version,
    /// `+bin`: the wasm to run, usually `${bundle}:/wasm/NAME.wasm`.
    pub wasm: PointVar,
    /// `+name`: the mechtron type inside the wasm (one wasm may export several), skewer case.
    pub name: String,
    /// The limits of each call into the guest.
    pub limits: Limits,
    /// What the mechtron subscribes to when it starts (SPEC §18).
    pub subscribe: Vec<Selector>,
}

/// The limits of each call into a guest (SPEC §11.2): an instruction budget and a memory cap.
///
/// Always within bounds: `fuel > 0` and `64KiB <= memory <= 4GiB`; deserializing checks them
/// too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawLimits")]
pub struct Limits {
    fuel: u64,
    memory: u64,
    timeout: Duration,
}

#[derive(Deserialize)]
struct RawLimits {
    fuel: u64,
    memory: u64,
    #[serde(default = "default_timeout")]
    timeout: Duration,
}

fn default_timeout() -> Duration {
    Limits::DEFAULT_TIMEOUT
}

impl TryFrom<RawLimits> for Limits {
    type Error = LimitError;
    fn try_from(raw: RawLimits) -> Result<Limits, LimitError> {
        Limits::new(raw.fuel, raw.memory)?.with_timeout(raw.timeout)
    }
}

/// Limits out of bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A guest with no fuel could run nothing.
    #[error("fuel must be greater than 0")]
    NoFuel,
    /// Memory below one wasm page or above what wasm32 can address.
    #[error(
        "memory must be between 64KiB (one wasm page) and 4GiB (all wasm32 can address), not {0} bytes"
    )]
    Memory(u64),
    /// A timeout below a millisecond or above a day.
    #[error("the timeout must be between 1ms and 24h, not {0:?}")]
    Timeout(Duration),
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const KB: u64 = 1000;
const MB: u64 = 1000 * KB;
const GB: u64 = 1000 * MB;

impl Limits {
    /// Fuel per call when the document sets none.
    pub const DEFAULT_FUEL: u64 = 1_000_000_000;
    /// Memory when the document sets none: 64 MiB.
    pub const DEFAULT_MEMORY: u64 = 64 * MIB;
    /// The least memory: one 64 KiB wasm page.
    pub const MIN_MEMORY: u64 = 64 * KIB;
    /// The most memory: 4 GiB, all a wasm32 guest can address.
    pub const MAX_MEMORY: u64 = 4 * GIB;
    /// The size of a wasm page.
    pub const PAGE_SIZE: u64 = 64 * KIB;
    /// The wall-clock bound of a call when the document sets none.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The shortest timeout.
    pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
    /// The longest timeout: a day.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

    /// Limits of `fuel` per call and `memory` bytes, checked against the bounds.
    pub fn new(fuel: u64, memory: u64) -> Result<Limits, LimitError> {
        if fuel == 0 {
            return Err(LimitError::NoFuel);
        }
        if !(Self::MIN_MEMORY..=Self::MAX_MEMORY).contains(&memory) {
            return Err(LimitError::Memory(memory));
        }
        Ok(Limits {
            fuel,
            memory,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The same limits with a wall-clock bound of `timeout` per call, checked against the
    /// bounds.
    pub fn with_timeout(self, timeout: Duration) -> Result<Limits, LimitError> {
        if !(Self::MIN_TIMEOUT..=Self::MAX_TIMEOUT).contains(&timeout) {
            return Err(LimitError::Timeout(timeout));
        }
        Ok(Limits { timeout, ..self })
    }

    /// The instruction budget of one call.
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    /// The memory cap, in bytes.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    /// The wall-clock bound of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The memory cap in whole wasm pages (rounded down), what a wasm runtime is given.
    pub fn memory_pages(&self) -> u32 {
        u32::try_from(self.memory / Self::PAGE_SIZE).unwrap_or(u32::MAX)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Self::DEFAULT_FUEL,
            memory: Self::DEFAULT_MEMORY,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

impl MechtronConfig {
    /// The point of the wasm, with `${bundle}` (and a leading `.`) standing for `bundle`, the
    /// bundle that holds the document.
    pub fn wasm_point(&self, bundle: &Point) -> Result<Point, PointError> {
        let env = Env::new()
            .with_working(bundle.clone())
            .with_var("bundle", bundle.to_string());
        self.wasm.resolve(&env)
    }

    /// Parses a mechtron document at the cursor, with any white space and comments around it.
    pub fn parse(c: &mut Cursor<'_>) -> Result<MechtronConfig, ParseError> {
        c.skip_ws_and_comments();
        let version = parse_header(c, "Mechtron")?;
        c.skip_ws_and_comments();
        let open = c.pos();
        c.expect("{", "'{' to open the document's sections")?;
        let mut wasm: Option<(Option<PointVar>, Option<String>, usize)> = None;
        let mut limits: Option<Limits> = None;
        let mut subscribe: Option<Vec<Selector>> = None;
        loop {
            c.skip_ws_and_comments();
            let close = c.pos();
            if c.eat_char('}') {
                let Some((bin, name, wasm_close)) = wasm else {
                    return Err(c.error_at(
                        close,
                        "missing the Wasm section: Wasm { +bin=${bundle}:/wasm/NAME.wasm; \
                         +name=NAME; }",
                    ));
                };
                let Some(wasm) = bin else {
                    return Err(c.error_at(
                        wasm_close,
                        "the Wasm section is missing +bin=…; (the wasm to run)",
                    ));
                };
                let Some(name) = name else {
                    return Err(c.error_at(
                        wasm_close,
                        "the Wasm section is missing +name=…; (the mechtron type in the wasm)",
                    ));
                };
                c.skip_ws_and_comments();
                return Ok(MechtronConfig {
                    version,
                    wasm,
                    name,
                    limits: limits.unwrap_or_default(),
                    subscribe: subscribe.unwrap_or_default(),
                });
            }
            if c.at_end() {
                return Err(unclosed(c, "a section or '}'", "document", open));
            }
            let at = c.pos();
            let section = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            let span = Span::new(at, c.pos());
            let duplicate = || c.error_span(span, format!("duplicate section '{section}'"));
            match section {
                "Wasm" if wasm.is_some() => return Err(duplicate()),
                "Limits" if limits.is_some() => return Err(duplicate()),
                "Subscribe" if subscribe.is_some() => return Err(duplicate()),
                "Wasm" => wasm = Some(parse_wasm(c)?),
                "Limits" => limits = Some(parse_limits(c)?),
                "Subscribe" => subscribe = Some(parse_subscribe(c)?),
                "" => return Err(c.error("expected a section (Wasm, Limits or Subscribe) or '}'")),
                other => {
                    return Err(c.error_span(
                        span,
                        format!("unknown section '{other}': expected Wasm, Limits or Subscribe"),
                    ));
                }
            }
        }
    }
}

/// `{ +bin=…; +name=…; }`, returning what was set and where the closing `}` is.
fn parse_wasm(c: &mut Cursor<'_>) -> Result<(Option<PointVar>, Option<String>, usize), ParseError> {
    let mut bin = None;
    let mut name = None;
    let close = parse_properties(c, "Wasm", |c, property, span| match property {
        "bin" if bin.is_some() => Err(duplicate(c, property, span)),
        "name" if name.is_some() => Err(duplicate(c, property, span)),
        "bin" => {
            let at = c.pos();
            let point = PointVar::parse(c)?;
            if let Some(var) = point_vars(&point).into_iter().find(|v| *v != "bundle") {
                let needle = format!("${{{var}}}");
                let offset = c.input()[at..c.pos()].find(&needle).unwrap_or(0);
                return Err(c.error_span(
                    Span::new(at + offset, at + offset + needle.len()),
                    format!("unknown variable '{needle}': only ${{bundle}} may be used here"),
                ));
            }
            bin = Some(point);
            Ok(())
        }
        "name" => {
            let at = c.pos();
            let text = c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
            if !is_skewer(text) {
                return Err(c.error_span(
                    Span::new(at, c.pos()),
                    "expected a mechtron name in skewer case ([a-z][a-z0-9-]*)",
                ));
            }
            name = Some(text.to_string());
            Ok(())
        }
        other => Err(unknown(c, "Wasm", other, span, "+bin or +name")),
    })?;
    Ok((bin, name, close))
}

/// `{ +SELECTOR; … }`: what the mechtron subscribes to, each selector once.
fn parse_subscribe(c: &mut Cursor<'_>) -> Result<Vec<Selector>, ParseError> {
    c.skip_ws_and_comments();
    let open = c.pos();
    c.expect("{", "'{' to open the Subscribe section")?;
    let mut selectors: Vec<Selector> = Vec::new();
    loop {
        c.skip_ws_and_comments();
        if c.eat_char('}') {
            return Ok(selectors);
        }
        if c.at_end() {
            return Err(unclosed(
                c,
                "'+' and a selector, or '}'",
                "Subscribe section",
                open,
            ));
        }
        c.expect(
            "+",
            "'+' and a selector (e.g. +localhost:chat:**<Channel>;), or '}'",
        )?;
        let at = c.pos();
        let selector = Selector::parse(c)?;
        if selectors.contains(&selector) {
            return Err(c.error_span(
                Span::new(at, c.pos()),
                format!("duplicate subscription to {selector}"),
            ));
        }
        selectors.push(selector);
        c.skip_ws_and_comments();
        c.expect(";", "';' after the selector")?;
    }
}

/// `{ +fuel=…; +memory=…; +timeout=…; }`, each optional.
fn parse_limits(c: &mut Cursor<'_>) -> Result<Limits, ParseError> {
    let mut fuel = None;
    let mut memory = None;
    let mut timeout = None;
    parse_properties(c, "Limits", |c, property, span| match property {
        "fuel" if fuel.is_some() => Err(duplicate(c, property, span)),
        "memory" if memory.is_some() => Err(duplicate(c, property, span)),
        "timeout" if timeout.is_some() => Err(duplicate(c, property, span)),
        "fuel" => {
            let at = c.pos();
            let value = parse_number(c, "the fuel per call, a number")?;
            if value == 0 {
                return Err(c.error_span(Span::new(at, c.pos()), LimitError::NoFuel.to_string()));
            }
            fuel = Some(value);
            Ok(())
        }
        "memory" => {
            memory = Some(parse_memory(c)?);
            Ok(())
        }
        "timeout" => {
            timeout = Some(parse_timeout(c)?);
            Ok(())
        }
        other => Err(unknown(
            c,
            "Limits",
            other,
            span,
            "+fuel, +memory or +timeout",
        )),
    })?;
    Ok(Limits {
        fuel: fuel.unwrap_or(Limits::DEFAULT_FUEL),
        memory: memory.unwrap_or(Limits::DEFAULT_MEMORY),
        timeout: timeout.unwrap_or(Limits::DEFAULT_TIMEOUT),
    })
}

/// A duration: a number and `ms`, `s` or `m`, within the bounds of [`Limits`].
fn parse_timeout(c: &mut Cursor<'_>) -> Result<Duration, ParseError> {
    let at = c.pos();
    let number = parse_number(c, "a timeout such as 5s or 500ms")?;
    let unit_at = c.pos();
    let unit = c.take_while(|ch| ch.is_ascii_alphabetic());
    let millis = match unit {
        "ms" => Some(number),
        "s" => number.checked_mul(1000),
        "m" => number.checked_mul(60_000),
        "" => {
            return Err(
                c.error("write the timeout's unit right after the number: ms, s or m, as in 5s")
            );
        }
        other => {
            return Err(c.error_span(
                Span::new(unit_at, c.pos()),
                format!("unknown time unit '{other}': expected ms, s or m"),
            ));
        }
    };
    let timeout = millis.map(Duration::from_millis);
    match timeout {
        Some(timeout) if (Limits::MIN_TIMEOUT..=Limits::MAX_TIMEOUT).contains(&timeout) => {
            Ok(timeout)
        }
        _ => Err(c.error_span(
            Span::new(at, c.pos()),
            format!(
                "the timeout must be between 1ms and 24h, not {}",
                &c.input()[at..c.pos()]
            ),
        )),
    }
}

/// A duration in the largest of `m`, `s`, `ms` that divides it exactly.
fn write_duration(f: &mut fmt::Formatter<'_>, duration: Duration) -> fmt::Result {
    let millis = duration.as_millis();
    for (unit, scale) in [("m", 60_000), ("s", 1000)] {
        if millis.is_multiple_of(scale) {
            return write!(f, "{}{unit}", millis / scale);
        }
    }
    write!(f, "{millis}ms")
}

fn duplicate(c: &Cursor<'_>, property: &str, span: Span) -> ParseError {
    c.error_span(span, format!("duplicate property '+{property}'"))
}

fn unknown(c: &Cursor<'_>, section: &str, property: &str, span: Span, known: &str) -> ParseError {
    c.error_span(
        span,
        format!("unknown property '+{property}' in {section}: expected {known}"),
    )
}

/// `{ { "+" name "=" value ";" } }`; `value` parses the value of the property it is given
/// (with the span of its name). Returns the offset of the closing `}`.
fn parse_properties(
    c: &mut Cursor<'_>,
    section: &str,
    mut value: impl FnMut(&mut Cursor<'_>, &str, Span) -> Result<(), ParseError>,
) -> Result<usize, ParseError> {
    c.skip_ws_and_comments();
    let open = c.pos();
    c.expect("{", &format!("'{{' to open the {section} section"))?;
    loop {
        c.skip_ws_and_comments();
        let close = c.pos();
        if c.eat_char('}') {
            return Ok(close);
        }
        if c.at_end() {
            return Err(unclosed(
                c,
                "a property or '}'",
                &format!("{section} section"),
                open,
            ));
        }
        if !c.eat_char('+') {
            if c.peek().is_some_and(|ch| ch.is_ascii_uppercase()) {
                return Err(c.error(format!(
                    "sections do not nest: expected a property '+name=value;' or '}}' to close \
                     the {section} section"
                )));
            }
            return Err(c.error("expected a property '+name=value;' or '}'"));
        }
        let at = c.pos();
        let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
        if name.is_empty() {
            return Err(c.error("expected a property name after '+'"));
        }
        let span = Span::new(at, c.pos());
        c.skip_ws();
        c.expect("=", &format!("'=' and the value of +{name}"))?;
        c.skip_ws();
        value(c, name, span)?;
        let end = c.pos();
        c.skip_ws_and_comments();
        if !c.eat_char(';') {
            return Err(c.error_at(end, format!("expected ';' after the value of +{name}")));
        }
    }
}

/// A decimal `u64`.
fn parse_number(c: &mut Cursor<'_>, what: &str) -> Result<u64, ParseError> {
    let at = c.pos();
    let digits = c.take_while(|ch| ch.is_ascii_digit());
    if digits.is_empty() {
        return Err(c.error(format!("expected {what}")));
    }
    digits.parse().map_err(|_| {
        c.error_span(
            Span::new(at, c.pos()),
            format!("{digits} is too large (the most is {})", u64::MAX),
        )
    })
}

/// A memory size: a number and an optional unit, within the bounds of [`Limits`].
fn parse_memory(c: &mut Cursor<'_>) -> Result<u64, ParseError> {
    let at = c.pos();
    let number = parse_number(c, "a memory size such as 64MiB")?;
    let unit_at = c.pos();
    let unit = c.take_while(|ch| ch.is_ascii_alphabetic());
    if unit.is_empty() {
        let after_space = c.rest().trim_start_matches([' ', '\t']);
        if after_space.len() < c.rest().len()
            && after_space.starts_with(|ch: char| ch.is_ascii_alphabetic())
        {
            return Err(c.error("write the unit right after the number, as in 64MiB"));
        }
    }
    let scale = match unit {
        "" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "KB" => KB,
        "MB" => MB,
        "GB" => GB,
        other => {
            return Err(c.error_span(
                Span::new(unit_at, c.pos()),
                format!(
                    "unknown size unit '{other}': expected KiB, MiB, GiB (powers of 1024) or KB, \
                     MB, GB (powers of 1000)"
                ),
            ));
        }
    };
    let span = Span::new(at, c.pos());
    match number.checked_mul(scale) {
        Some(bytes) if (Limits::MIN_MEMORY..=Limits::MAX_MEMORY).contains(&bytes) => Ok(bytes),
        _ => Err(c.error_span(
            span,
            format!(
                "memory must be between 64KiB (one wasm page) and 4GiB (all wasm32 can \
                 address), not {}",
                &c.input()[at..c.pos()]
            ),
        )),
    }
}

/// A size in the first unit that divides it exactly, binary units first (`64MiB`, `4GB`,
/// `96KB`), else in bytes.
fn write_size(f: &mut fmt::Formatter<'_>, bytes: u64) -> fmt::Result {
    for (unit, scale) in [
        ("GiB", GIB),
        ("MiB", MIB),
        ("GB", GB),
        ("MB", MB),
        ("KiB", KIB),
        ("KB", KB),
    ] {
        if bytes.is_multiple_of(scale) {
            return write!(f, "{}{unit}", bytes / scale);
        }
    }
    write!(f, "{bytes}")
}

impl fmt::Display for MechtronConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Mechtron(version={}) {{", self.version)?;
        writeln!(f, "  Wasm {{")?;
        writeln!(f, "    +bin={};", self.wasm)?;
        writeln!(f, "    +name={};", self.name)?;
        writeln!(f, "  }}")?;
        writeln!(f, "  Limits {{")?;
        writeln!(f, "    +fuel={};", self.limits.fuel)?;
        f.write_str("    +memory=")?;
        write_size(f, self.limits.memory)?;
        writeln!(f, ";")?;
        f.write_str("    +timeout=")?;
        write_duration(f, self.limits.timeout)?;
        writeln!(f, ";")?;
        writeln!(f, "  }}")?;
        if !self.subscribe.is_empty() {
            writeln!(f, "  Subscribe {{")?;
            for selector in &self.subscribe {
                writeln!(f, "    +{selector};")?;
            }
            writeln!(f, "  }}")?;
        }
        f.write_str("}")
    }
}

impl FromStr for MechtronConfig {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("mechtron", s, MechtronConfig::parse)
    }
}

/// The name `#[mechtron]` gives a mechtron type when none is written: its Rust type name in
/// skewer case (`HelloWorld` → `hello-world`, `HTTPServer` → `http-server`, `Hello_Two` →
/// `hello-two`, `Counter2Go` → `counter2-go`). The macro and `starlane new` both use it, so
/// what a scaffold expects is what the macro generates.
pub fn mechtron_type_name(type_name: &str) -> String {
    let chars: Vec<char> = type_name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary =
                prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower);
            if boundary && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = "\
Mechtron(version=1.0.0) {
  Wasm {
    +bin=${bundle}:/wasm/hello.wasm;
    +name=hello;
  }
  Limits {
    +fuel=100000000;
    +memory=64MiB;
  }
}";

    fn config(s: &str) -> MechtronConfig {
        s.parse().unwrap_or_else(|e| panic!("{s}\n{e}"))
    }

    fn err(s: &str) -> ParseError {
        match s.parse::<MechtronConfig>() {
            Ok(c) => panic!("{s} parsed as {c}"),
            Err(e) => e,
        }
    }

    fn with_limits(limits: &str) -> String {
        format!(
            "Mechtron(version=1.0.0) {{ Wasm {{ +bin=${{bundle}}:/w.wasm; +name=w; }} Limits {{ {limits} }} }}"
        )
    }

    #[test]
    fn the_spec_example_parses_and_prints_canonically() {
        let c = config(SPEC_EXAMPLE);
        assert_eq!(c.version, Version::new(1, 0, 0));
        assert_eq!(c.wasm.to_string(), "${bundle}:/wasm/hello.wasm");
        assert_eq!(c.name, "hello");
        assert_eq!(
            c.limits,
            Limits::new(100_000_000, 64 * MIB).unwrap_or_default()
        );
        assert_eq!(c.limits.memory_pages(), 1024);
        assert_eq!(c.limits.timeout(), Limits::DEFAULT_TIMEOUT);
        // The canonical print gives every limit, the default timeout too.
        assert_eq!(
            c.to_string(),
            SPEC_EXAMPLE.replace("+memory=64MiB;\n", "+memory=64MiB;\n    +timeout=30s;\n")
        );
        let bundle: Point = "repo:hello:1.0.0".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.wasm_point(&bundle).map(|p| p.to_string()),
            Ok("repo:hello:1.0.0:/wasm/hello.wasm".to_string())
        );
    }

    #[test]
    fn limits_default_when_absent() {
        let bare =
            config("# no limits\nMechtron(version=1.0.0){Wasm{+bin=${bundle}:/a.wasm;+name=a;}}\n");
        assert_eq!(bare.limits, Limits::default());
        assert_eq!(
            (bare.limits.fuel(), bare.limits.memory()),
            (1_000_000_000, 64 * MIB)
        );
        let fuel_only = config(&with_limits("+fuel=5;"));
        assert_eq!(
            (fuel_only.limits.fuel(), fuel_only.limits.memory()),
            (5, 64 * MIB)
        );
        let memory_only = config(&with_limits("+memory=1GiB;"));
        assert_eq!(
            (memory_only.limits.fuel(), memory_only.limits.memory()),
            (Limits::DEFAULT_FUEL, GIB)
        );
        let empty = config(&with_limits(""));
        assert_eq!(empty.limits, Limits::default());
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        for (text, bytes, canonical) in [
            ("65536", 65_536, "64KiB"),
            ("100000", 100_000, "100KB"),
            ("64KiB", 64 * KIB, "64KiB"),
            ("1536KiB", 1536 * KIB, "1536KiB"),
            ("2048KiB", 2 * MIB, "2MiB"),
            ("1GiB", GIB, "1GiB"),
            ("4GiB", 4 * GIB, "4GiB"),
            ("1MB", 1_000_000, "1MB"),
            ("2GB", 2_000_000_000, "2GB"),
            ("100KB", 100_000, "100KB"),
            ("65537", 65_537, "65537"),
            ("2048000", 2_048_000, "2000KiB"),
        ] {
            let c = config(&with_limits(&format!("+memory={text};")));
            assert_eq!(c.limits.memory(), bytes, "{text}");
            assert!(
                c.to_string().contains(&format!("+memory={canonical};")),
                "{text}: {c}"
            );
            assert_eq!(config(&c.to_string()), c);
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(Limits::new(0, 64 * MIB), Err(LimitError::NoFuel));
        assert_eq!(
            Limits::new(1, 4 * GIB + 1),
            Err(LimitError::Memory(4 * GIB + 1))
        );
        assert_eq!(Limits::new(1, 1024), Err(LimitError::Memory(1024)));
        assert_eq!(
            Limits::new(u64::MAX, 4 * GIB).map(|l| l.memory_pages()),
            Ok(65_536)
        );
        let json = r#"{"fuel":0,"memory":67108864}"#;
        assert!(serde_json::from_str::<Limits>(json).is_err());
        let json = r#"{"fuel":7,"memory":67108864}"#;
        assert_eq!(
            serde_json::from_str::<Limits>(json).ok(),
            Limits::new(7, 64 * MIB).ok()
        );
    }

    #[test]
    fn errors_point_at_the_line_and_column() {
        let cases: &[(&str, (usize, usize), &str)] = &[
            (
                &with_limits("+fuel=0;"),
                (1, 84),
                "fuel must be greater than 0",
            ),
            (
                &with_limits("+memory=8GiB;"),
                (1, 86),
                "memory must be between 64KiB",
            ),
            (
                &with_limits("+memory=1KiB;"),
                (1, 86),
                "memory must be between 64KiB",
            ),
            (
                &with_limits("+memory=64mb;"),
                (1, 88),
                "unknown size unit 'mb'",
            ),
            (
                &with_limits("+memory=99999999999999999999GiB;"),
                (1, 86),
                "is too large",
            ),
            (
                &with_limits("+memory=20000000000GiB;"),
                (1, 86),
                "memory must be between",
            ),
            (
                &with_limits("+stack=1;"),
                (1, 79),
                "unknown property '+stack' in Limits: expected +fuel, +memory or +timeout",
            ),
            (
                &with_limits("+fuel=1; +fuel=2;"),
                (1, 88),
                "duplicate property '+fuel'",
            ),
            (
                &with_limits("+fuel=1"),
                (1, 85),
                "expected ';' after the value of +fuel",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Wasm { +bin=${bundle}:/a.wasm; }\n}",
                (2, 34),
                "the Wasm section is missing +name",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Wasm { +name=a; }\n}",
                (2, 19),
                "the Wasm section is missing +bin",
            ),
            (
                "Mechtron(version=1.0.0) {\n}",
                (2, 1),
                "missing the Wasm section",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Wasm { +bin=${app}:/a.wasm; +name=a; }\n}",
                (2, 15),
                "unknown variable '${app}': only ${bundle} may be used here",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Wasm { +bin=${bundle}:/a.wasm; +name=Hello; }\n}",
                (2, 40),
                "skewer case",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Guest { }\n}",
                (2, 3),
                "unknown section 'Guest': expected Wasm, Limits or Subscribe",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Wasm { +bin=${bundle}:/a.wasm; +name=a; }\n  Wasm { }\n}",
                (3, 3),
                "duplicate section 'Wasm'",
            ),
            ("Mechtron(version=1.0) {}", (1, 18), "expected a version"),
            (
                "Mechtron(version=0.9.0) {}",
                (1, 18),
                "unsupported Mechtron version 0.9.0",
            ),
            (
                "Mechtron(version=1.0.0) {\n  Wasm {",
                (2, 9),
                "expected a property or '}' to close the Wasm section opened at 2:8",
            ),
            (
                "Bind(version=1.0.0) {}",
                (1, 1),
                "expected 'Mechtron(version=1.0.0)'",
            ),
        ];
        for (input, at, message) in cases {
            let e = err(input);
            assert_eq!(e.line_col(), *at, "{input}\n{e}");
            assert!(e.message.contains(message), "{input}\n{e}");
        }
    }

    #[test]
    fn configs_cross_the_wire() {
        let c = config(SPEC_EXAMPLE);
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&c, config).unwrap_or_default();
        let back: Option<(MechtronConfig, usize)> =
            bincode::serde::decode_from_slice(&bytes, config).ok();
        assert_eq!(back.map(|(c, _)| c), Some(c));
    }

    #[test]
    fn type_names_become_skewer_case() {
        assert_eq!(mechtron_type_name("Hello"), "hello");
        assert_eq!(mechtron_type_name("HelloWorld"), "hello-world");
        assert_eq!(mechtron_type_name("HTTPServer"), "http-server");
        assert_eq!(mechtron_type_name("Hello_Two"), "hello-two");
        assert_eq!(mechtron_type_name("Counter2Go"), "counter2-go");
        assert_eq!(mechtron_type_name("Hello2"), "hello2");
    }
}
