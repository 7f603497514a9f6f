//! Substance: the typed body of a wave (SPEC §5.2).
//!
//! [`Substance`] is what a wave carries; [`SubstanceKind`] names its variants in bind filters
//! (`-[ Text ]->`). Ordinary Rust types convert both ways so handler signatures stay plain,
//! and any serde type travels as [`Json`].
//!
//! ```
//! use cosmic_space::{Substance, SubstanceError, SubstanceKind};
//!
//! let body = Substance::from("world");
//! assert_eq!(body.kind(), SubstanceKind::Text);
//! assert_eq!(String::try_from(body.clone())?, "world");
//! assert_eq!(
//!     i64::try_from(body),
//!     Err(SubstanceError::WrongKind { expected: SubstanceKind::Int, found: SubstanceKind::Text })
//! );
//!
//! let json = Substance::json(&vec![1, 2, 3])?;
//! assert_eq!(json.to_json::<Vec<u8>>()?, [1, 2, 3]);
//! # Ok::<(), SubstanceError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::command::Command;
use crate::method::HttpMethod;
use crate::particle::{Details, Status, Stub};
use crate::point::Point;
use crate::surface::Surface;
use crate::syntax::{Cursor, ParseError, Span, word_enum};
use crate::wave::{Headers, Query, StatusCode, Wave, split_target};

word_enum!(
    /// The name of a kind of substance, as written in bind filters (`-[ Text ]->`).
    pub enum SubstanceKind {
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
    }
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

impl FromStr for SubstanceKind {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Cursor::parse_all("substance kind", s, SubstanceKind::parse)
    }
}

/// The typed body of a wave.
///
/// New variants are appended at the end: the variant index is the wire tag.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Substance {
    /// No body.
    #[default]
    Empty,
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Bin(#[serde(with = "bytes")] Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A JSON document (any serde type).
    Json(Json),
    /// A point.
    Point(Point),
    /// A surface.
    Surface(Surface),
    /// A list of substances (nesting is limited to [`Substance::MAX_DEPTH`]).
    List(
        #[serde(
            serialize_with = "nested::serialize",
            deserialize_with = "nested::list"
        )]
        Vec<Substance>,
    ),
    /// A map from names to substances (nesting is limited to [`Substance::MAX_DEPTH`]).
    Map(#[serde(with = "nested")] BTreeMap<String, Substance>),
    /// A particle's stub (boxed: it is large and rare, and keeps every wave small).
    Stub(Box<Stub>),
    /// A particle's details (boxed, like the stub).
    Details(Box<Details>),
    /// A particle's status.
    Status(Status),
    /// A command as text, with the files it carries.
    RawCommand(RawCommand),
    /// Error messages.
    Errors(Errors),
    /// An access token.
    Token(Token),
    /// A whole wave (nesting is limited to [`Substance::MAX_DEPTH`]).
    Wave(#[serde(with = "nested")] Box<Wave>),
    /// An HTTP request, as the gateway hands it in.
    HttpRequest(HttpRequest),
    /// An HTTP response, as the gateway hands it out.
    HttpResponse(HttpResponse),
    /// A parsed command, for the executor.
    Command(Box<Command>),
}

impl From<Command> for Substance {
    fn from(command: Command) -> Substance {
        Substance::Command(Box::new(command))
    }
}

impl Substance {
    /// How deeply lists, maps and waves may nest inside a substance. Encoding and decoding
    /// refuse deeper values, so a hostile frame cannot exhaust the stack.
    pub const MAX_DEPTH: u32 = 32;

    /// The kind of substance, as bind filters name it.
    pub fn kind(&self) -> SubstanceKind {
        match self {
            Substance::Empty => SubstanceKind::Empty,
            Substance::Text(_) => SubstanceKind::Text,
            Substance::Bin(_) => SubstanceKind::Bin,
            Substance::Bool(_) => SubstanceKind::Bool,
            Substance::Int(_) => SubstanceKind::Int,
            Substance::Json(_) => SubstanceKind::Json,
            Substance::Point(_) => SubstanceKind::Point,
            Substance::Surface(_) => SubstanceKind::Surface,
            Substance::List(_) => SubstanceKind::List,
            Substance::Map(_) => SubstanceKind::Map,
            Substance::Stub(_) => SubstanceKind::Stub,
            Substance::Details(_) => SubstanceKind::Details,
            Substance::Status(_) => SubstanceKind::Status,
            Substance::RawCommand(_) => SubstanceKind::RawCommand,
            Substance::Errors(_) => SubstanceKind::Errors,
            Substance::Token(_) => SubstanceKind::Token,
            Substance::Wave(_) => SubstanceKind::Wave,
            Substance::HttpRequest(_) => SubstanceKind::HttpRequest,
            Substance::HttpResponse(_) => SubstanceKind::HttpResponse,
            Substance::Command(_) => SubstanceKind::Command,
        }
    }

    /// `value` as a [`Substance::Json`].
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Substance, SubstanceError> {
        Json::from_value(value).map(Substance::Json)
    }

    /// The value a [`Substance::Json`] holds, as `T`.
    pub fn to_json<T: DeserializeOwned>(&self) -> Result<T, SubstanceError> {
        match self {
            Substance::Json(json) => json.to_value(),
            other => Err(other.wrong_kind(SubstanceKind::Json)),
        }
    }

    /// Whether this is [`Substance::Empty`].
    pub fn is_empty(&self) -> bool {
        matches!(self, Substance::Empty)
    }

    /// The text, if this is [`Substance::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Substance::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The bytes, if this is [`Substance::Bin`].
    pub fn as_bin(&self) -> Option<&[u8]> {
        match self {
            Substance::Bin(bytes) => Some(bytes),
            _ => None,
        }
    }

    fn wrong_kind(&self, expected: SubstanceKind) -> SubstanceError {
        SubstanceError::WrongKind {
            expected,
            found: self.kind(),
        }
    }
}

/// Why a substance could not be made or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstanceError {
    /// The substance was of another kind than the one asked for.
    #[error("expected a {expected} substance, found {found}")]
    WrongKind {
        /// The kind asked for.
        expected: SubstanceKind,
        /// The kind it was.
        found: SubstanceKind,
    },
    /// Text that should be JSON is not, or JSON that does not fit the type asked for.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// An integer does not fit the type asked for.
    #[error("{value} does not fit in {target}")]
    OutOfRange {
        /// The integer.
        value: i64,
        /// The type asked for.
        target: &'static str,
    },
}

/// A JSON document, kept as its canonical text (compact, object keys sorted), so that it
/// crosses the wire with bincode (which cannot carry a `serde_json::Value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Json(String);

impl Json {
    /// The document `text`, checked and made canonical.
    pub fn new(text: &str) -> Result<Json, SubstanceError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SubstanceError::Json(e.to_string()))?;
        Ok(Json(value.to_string()))
    }

    /// `value` serialized as JSON.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Json, SubstanceError> {
        serde_json::to_value(value)
            .map(|v| Json(v.to_string()))
            .map_err(|e| SubstanceError::Json(e.to_string()))
    }

    /// The document as `T`.
    pub fn to_value<T: DeserializeOwned>(&self) -> Result<T, SubstanceError> {
        serde_json::from_str(&self.0).map_err(|e| SubstanceError::Json(e.to_string()))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Json {
    /// Checked like [`Json::new`]: a frame cannot smuggle in text that is not JSON.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Json::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A list of error messages: the body of an error reflection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Errors(Vec<String>);

impl Errors {
    /// No errors.
    pub fn new() -> Errors {
        Errors(Vec::new())
    }

    /// One error.
    pub fn one(message: impl Into<String>) -> Errors {
        Errors(vec![message.into()])
    }

    /// Adds an error.
    pub fn push(&mut self, message: impl Into<String>) {
        self.0.push(message.into());
    }

    /// The messages, in order.
    pub fn messages(&self) -> &[String] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Errors {
    /// The messages joined with `"; "`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl From<String> for Errors {
    fn from(message: String) -> Self {
        Errors::one(message)
    }
}

impl From<&str> for Errors {
    fn from(message: &str) -> Self {
        Errors::one(message)
    }
}

impl From<Vec<String>> for Errors {
    fn from(messages: Vec<String>) -> Self {
        Errors(messages)
    }
}

/// An opaque access token (a bearer credential). Its `Debug` form hides the secret.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// The token with this secret text.
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into())
    }

    /// The secret text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A command line as typed, with the files it transfers (`publish ^[ bundle.zip ]-> …`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawCommand {
    /// The command text.
    pub line: String,
    /// The files, by the names the line refers to them by.
    pub transfers: Vec<Transfer>,
}

impl RawCommand {
    /// A command line with no transfers.
    pub fn new(line: impl Into<String>) -> RawCommand {
        RawCommand {
            line: line.into(),
            transfers: Vec::new(),
        }
    }

    /// The same command carrying `bytes` under `name`.
    pub fn with_transfer(mut self, name: impl Into<String>, bytes: Vec<u8>) -> RawCommand {
        self.transfers.push(Transfer {
            name: name.into(),
            bytes,
        });
        self
    }
}

/// A named file a command carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    /// The name the command line uses for it.
    pub name: String,
    /// The content.
    #[serde(with = "bytes")]
    pub bytes: Vec<u8>,
}

/// An HTTP request as the gateway hands it into the cosmos.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// The URI path, without the query.
    pub path: String,
    /// The query string, without the `?`.
    pub query: Option<String>,
    /// The headers.
    pub headers: Headers,
    /// The body.
    #[serde(with = "bytes")]
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request for `target` (a path with an optional `?query`), no headers, no body.
    pub fn new(method: HttpMethod, target: &str) -> HttpRequest {
        let (path, query) = split_target(target);
        HttpRequest {
            method,
            path: path.to_string(),
            query: query.map(str::to_string),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The same request with header `name` set to `value`.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> HttpRequest {
        self.headers.insert(name, value);
        self
    }

    /// The same request with `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpRequest {
        self.body = body.into();
        self
    }

    /// The query, parsed (empty when there is none).
    pub fn query_params(&self) -> Query {
        self.query.as_deref().map(Query::parse).unwrap_or_default()
    }
}

const CONTENT_TYPE: &str = "content-type";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// An HTTP response, as the gateway hands it back out.
///
/// ```
/// use cosmic_space::{HttpResponse, StatusCode};
///
/// let page = HttpResponse::html("<h1>Hello</h1>");
/// assert_eq!(page.headers.get("content-type"), Some("text/html; charset=utf-8"));
/// let missing = HttpResponse::status(404, "no such item");
/// assert_eq!((missing.status, missing.body.as_slice()), (StatusCode::NOT_FOUND, &b"no such item"[..]));
/// let item = HttpResponse::json(&[1, 2, 3]);
/// assert_eq!(item.body, b"[1,2,3]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: Headers,
    /// The body.
    #[serde(with = "bytes")]
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status`, no headers and no body.
    pub fn new(status: StatusCode) -> HttpResponse {
        HttpResponse {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// 200 with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse::new(StatusCode::OK).with_body(body)
    }

    /// 200 with `body` as `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> HttpResponse {
        HttpResponse::ok(body.into()).with_header(CONTENT_TYPE, TEXT_PLAIN)
    }

    /// 200 with `body` as `text/html; charset=utf-8`.
    pub fn html(body: impl Into<String>) -> HttpResponse {
        HttpResponse::ok(body.into()).with_header(CONTENT_TYPE, "text/html; charset=utf-8")
    }

    /// 200 with `value` as JSON (`application/json`). A value that does not serialize (a map
    /// with keys that are not strings, a `Serialize` impl that fails) answers 500 saying why,
    /// as text: never a panic.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> HttpResponse {
        match serde_json::to_vec(value) {
            Ok(body) => HttpResponse::ok(body).with_header(CONTENT_TYPE, "application/json"),
            Err(error) => HttpResponse::status(
                StatusCode::ERROR,
                format!("the answer cannot be written as JSON: {error}"),
            ),
        }
    }

    /// `status` with `body` as text: `HttpResponse::status(404, "no such item")` or
    /// `HttpResponse::status(StatusCode::NOT_FOUND, …)`. A number that is not an HTTP status
    /// (100–599) answers 500 saying so.
    pub fn status(
        status: impl TryInto<StatusCode, Error: fmt::Display>,
        body: impl Into<String>,
    ) -> HttpResponse {
        match status.try_into() {
            Ok(status) => HttpResponse::new(status)
                .with_body(body.into())
                .with_header(CONTENT_TYPE, TEXT_PLAIN),
            Err(error) => HttpResponse::status(StatusCode::ERROR, error.to_string()),
        }
    }

    /// The same response with header `name` set to `value`.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> HttpResponse {
        self.headers.insert(name, value);
        self
    }

    /// The same response with `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }
}

/// `From<$ty> for Substance` and `TryFrom<Substance> for $ty` through one variant.
macro_rules! variant_conversions {
    ($($variant:ident($ty:ty)),+ $(,)?) => {$(
        impl From<$ty> for Substance {
            fn from(value: $ty) -> Substance {
                Substance::$variant(value)
            }
        }

        impl TryFrom<Substance> for $ty {
            type Error = SubstanceError;
            fn try_from(substance: Substance) -> Result<$ty, SubstanceError> {
                match substance {
                    Substance::$variant(value) => Ok(value),
                    other => Err(other.wrong_kind(SubstanceKind::$variant)),
                }
            }
        }
    )+};
}

variant_conversions!(
    Text(String),
    Bin(Vec<u8>),
    Bool(bool),
    Int(i64),
    Json(Json),
    Point(Point),
    Surface(Surface),
    List(Vec<Substance>),
    Map(BTreeMap<String, Substance>),
    Status(Status),
    RawCommand(RawCommand),
    Errors(Errors),
    Token(Token),
    HttpRequest(HttpRequest),
    HttpResponse(HttpResponse),
);

/// Integers that widen into [`Substance::Int`] and narrow back with a range check.
macro_rules! int_conversions {
    ($($ty:ty),+) => {$(
        impl From<$ty> for Substance {
            fn from(value: $ty) -> Substance {
                Substance::Int(i64::from(value))
            }
        }

        impl TryFrom<Substance> for $ty {
            type Error = SubstanceError;
            fn try_from(substance: Substance) -> Result<$ty, SubstanceError> {
                let value = i64::try_from(substance)?;
                <$ty>::try_from(value).map_err(|_| SubstanceError::OutOfRange {
                    value,
                    target: stringify!($ty),
                })
            }
        }
    )+};
}

int_conversions!(i32, u32);

impl TryFrom<Substance> for u64 {
    type Error = SubstanceError;
    fn try_from(substance: Substance) -> Result<u64, SubstanceError> {
        let value = i64::try_from(substance)?;
        u64::try_from(value).map_err(|_| SubstanceError::OutOfRange {
            value,
            target: "u64",
        })
    }
}

impl From<&str> for Substance {
    fn from(text: &str) -> Substance {
        Substance::Text(text.to_string())
    }
}

impl From<&[u8]> for Substance {
    fn from(bytes: &[u8]) -> Substance {
        Substance::Bin(bytes.to_vec())
    }
}

impl From<()> for Substance {
    fn from((): ()) -> Substance {
        Substance::Empty
    }
}

impl TryFrom<Substance> for () {
    type Error = SubstanceError;
    fn try_from(substance: Substance) -> Result<(), SubstanceError> {
        match substance {
            Substance::Empty => Ok(()),
            other => Err(other.wrong_kind(SubstanceKind::Empty)),
        }
    }
}

/// `From<$ty> for Substance` and `TryFrom<Substance> for $ty` through a boxed variant.
macro_rules! boxed_conversions {
    ($($variant:ident($ty:ty)),+ $(,)?) => {$(
        impl From<$ty> for Substance {
            fn from(value: $ty) -> Substance {
                Substance::$variant(Box::new(value))
            }
        }

        impl TryFrom<Substance> for $ty {
            type Error = SubstanceError;
            fn try_from(substance: Substance) -> Result<$ty, SubstanceError> {
                match substance {
                    Substance::$variant(value) => Ok(*value),
                    other => Err(other.wrong_kind(SubstanceKind::$variant)),
                }
            }
        }
    )+};
}

boxed_conversions!(Stub(Stub), Details(Details), Wave(Wave));

/// Serde for byte vectors as one byte string (one copy, no per-byte calls) rather than a
/// sequence of numbers. Human-readable formats that write bytes as arrays are accepted too.
mod bytes {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<B: AsRef<[u8]>, S: Serializer>(
        bytes: &B,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes.as_ref())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_bytes(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

/// Serde for the variants through which substances nest (List, Map, Wave): counts the depth
/// and refuses to go past [`Substance::MAX_DEPTH`], in both directions, so a hostile frame
/// cannot overflow the stack and what encodes also decodes.
mod nested {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{Error as _, SeqAccess, Visitor};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Substance;

    thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    /// One level of nesting, left again when dropped (also on error).
    struct Level;

    impl Level {
        fn enter() -> Result<Level, String> {
            DEPTH.with(|depth| {
                let now = depth.get();
                if now >= Substance::MAX_DEPTH {
                    Err(format!(
                        "substances nest deeper than {} levels",
                        Substance::MAX_DEPTH
                    ))
                } else {
                    depth.set(now + 1);
                    Ok(Level)
                }
            })
        }
    }

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }

    pub(super) fn serialize<T: Serialize, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let _level = Level::enter().map_err(S::Error::custom)?;
        value.serialize(serializer)
    }

    pub(super) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let _level = Level::enter().map_err(D::Error::custom)?;
        T::deserialize(deserializer)
    }

    /// Like [`deserialize`], for lists, preallocating little whatever length a frame claims.
    pub(super) fn list<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Substance>, D::Error> {
        let _level = Level::enter().map_err(D::Error::custom)?;
        deserializer.deserialize_seq(ListVisitor)
    }

    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<Substance>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of substances")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Substance>, A::Error> {
            let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(item) = seq.next_element()? {
                list.push(item);
            }
            Ok(list)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;

    #[test]
    fn every_variant_has_its_kind() {
        let point: Point = "localhost:app".parse().unwrap();
        let stub = Stub {
            point: point.clone(),
            kind: Kind::App,
            status: Status::Ready,
        };
        let cases = [
            (Substance::Empty, "Empty"),
            (Substance::from("t"), "Text"),
            (Substance::from(vec![1u8]), "Bin"),
            (Substance::from(true), "Bool"),
            (Substance::from(1i64), "Int"),
            (Substance::json(&1).unwrap(), "Json"),
            (Substance::from(point.clone()), "Point"),
            (Substance::from(Surface::core(point.clone())), "Surface"),
            (Substance::from(vec![Substance::Empty]), "List"),
            (Substance::from(BTreeMap::new()), "Map"),
            (Substance::from(stub.clone()), "Stub"),
            (Substance::from(Details::new(stub)), "Details"),
            (Substance::from(Status::Init), "Status"),
            (Substance::from(RawCommand::new("x")), "RawCommand"),
            (Substance::from(Errors::one("e")), "Errors"),
            (Substance::from(Token::new("s")), "Token"),
            (
                Substance::from(HttpRequest::new(HttpMethod::Get, "/")),
                "HttpRequest",
            ),
            (
                Substance::from(HttpResponse::new(StatusCode::OK)),
                "HttpResponse",
            ),
            (
                Substance::from("create localhost<Space>".parse::<Command>().unwrap()),
                "Command",
            ),
        ];
        for (substance, name) in cases {
            assert_eq!(substance.kind().name(), name);
            let frame = crate::wire::encode(&substance).unwrap();
            assert_eq!(crate::wire::decode::<Substance>(&frame).unwrap(), substance);
        }
    }

    #[test]
    fn plain_rust_types_convert_both_ways() {
        assert_eq!(String::try_from(Substance::from("a")).unwrap(), "a");
        assert_eq!(
            Vec::<u8>::try_from(Substance::from(&b"ab"[..])).unwrap(),
            b"ab"
        );
        assert!(bool::try_from(Substance::from(true)).unwrap());
        assert_eq!(i64::try_from(Substance::from(-5i32)).unwrap(), -5);
        assert_eq!(u32::try_from(Substance::from(7u32)).unwrap(), 7);
        assert_eq!(u64::try_from(Substance::from(7i64)).unwrap(), 7);
        assert_eq!(<()>::try_from(Substance::from(())), Ok(()));
        let point: Point = "localhost".parse().unwrap();
        assert_eq!(Point::try_from(Substance::from(point.clone())), Ok(point));
    }

    #[test]
    fn wrong_kinds_and_ranges_are_typed_errors() {
        assert_eq!(
            String::try_from(Substance::Int(1)),
            Err(SubstanceError::WrongKind {
                expected: SubstanceKind::Text,
                found: SubstanceKind::Int
            })
        );
        assert_eq!(
            <()>::try_from(Substance::from("x"))
                .unwrap_err()
                .to_string(),
            "expected a Empty substance, found Text"
        );
        assert_eq!(
            u32::try_from(Substance::Int(-1)),
            Err(SubstanceError::OutOfRange {
                value: -1,
                target: "u32"
            })
        );
        assert_eq!(
            i32::try_from(Substance::Int(i64::MAX))
                .unwrap_err()
                .to_string(),
            "9223372036854775807 does not fit in i32"
        );
        assert!(u64::try_from(Substance::Int(-3)).is_err());
        assert!(Wave::try_from(Substance::Empty).is_err());
    }

    #[test]
    fn json_is_canonical_text() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Greeting {
            who: String,
            times: u32,
        }
        let json = Json::new("{ \"b\": 1,\n \"a\": [true, null] }").unwrap();
        assert_eq!(json.as_str(), r#"{"a":[true,null],"b":1}"#);
        assert_eq!(json.to_string(), r#"{"a":[true,null],"b":1}"#);
        assert!(matches!(Json::new("{nope"), Err(SubstanceError::Json(_))));

        let greeting = Greeting {
            who: "scott".into(),
            times: 2,
        };
        let substance = Substance::json(&greeting).unwrap();
        assert_eq!(
            substance,
            Substance::Json(Json(r#"{"times":2,"who":"scott"}"#.into()))
        );
        assert_eq!(substance.to_json::<Greeting>().unwrap(), greeting);
        assert!(matches!(
            substance.to_json::<Vec<u8>>(),
            Err(SubstanceError::Json(_))
        ));
        assert_eq!(
            Substance::from("x").to_json::<u8>(),
            Err(SubstanceError::WrongKind {
                expected: SubstanceKind::Json,
                found: SubstanceKind::Text
            })
        );
    }

    #[test]
    fn helpers() {
        assert!(Substance::Empty.is_empty());
        assert_eq!(Substance::from("a").as_text(), Some("a"));
        assert_eq!(Substance::from(vec![1u8]).as_bin(), Some(&[1u8][..]));
        assert_eq!(Substance::Empty.as_text(), None);
        assert_eq!(Substance::Int(1).as_bin(), None);
        assert_eq!(format!("{:?}", Token::new("hunter2")), "Token(<redacted>)");
        assert_eq!(Token::new("hunter2").as_str(), "hunter2");
        let mut errors = Errors::new();
        assert!(errors.is_empty());
        errors.push("a");
        errors.push("b");
        assert_eq!(errors.to_string(), "a; b");
        assert_eq!(errors.messages(), ["a", "b"]);
        assert_eq!(Errors::from("x"), Errors::one("x"));
    }

    #[test]
    fn http_messages() {
        let req = HttpRequest::new(HttpMethod::Post, "/greet?who=scott&x=1")
            .with_header("Content-Type", "text/plain")
            .with_body("hi");
        assert_eq!(req.path, "/greet");
        assert_eq!(req.query.as_deref(), Some("who=scott&x=1"));
        assert_eq!(req.headers.get("content-type"), Some("text/plain"));
        assert_eq!(req.body, b"hi");
        assert_eq!(HttpRequest::new(HttpMethod::Get, "/a").query, None);
        assert_eq!(req.query_params().get("who"), Some("scott"));
        assert!(
            HttpRequest::new(HttpMethod::Get, "/a")
                .query_params()
                .is_empty()
        );
        let res = HttpResponse::ok("<h1>hi</h1>").with_header("Content-Type", "text/html");
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body, b"<h1>hi</h1>");
        assert_eq!(res.headers.get("content-type"), Some("text/html"));
        let cmd =
            RawCommand::new("publish ^[ b.zip ]-> repo:b:1.0.0").with_transfer("b.zip", vec![1]);
        assert_eq!(cmd.transfers[0].name, "b.zip");
    }

    #[test]
    fn http_response_helpers_set_status_type_and_body() {
        let text = HttpResponse::text("hello");
        assert_eq!(
            (text.status, text.body.as_slice()),
            (StatusCode::OK, &b"hello"[..])
        );
        assert_eq!(
            text.headers.get("content-type"),
            Some("text/plain; charset=utf-8")
        );
        let html = HttpResponse::html(String::from("<p>hi</p>"));
        assert_eq!(html.body, b"<p>hi</p>");
        assert_eq!(
            html.headers.get("content-type"),
            Some("text/html; charset=utf-8")
        );

        #[derive(Serialize)]
        struct Item {
            id: u64,
            name: &'static str,
        }
        let json = HttpResponse::json(&Item { id: 7, name: "tea" });
        assert_eq!(json.status, StatusCode::OK);
        assert_eq!(json.body, br#"{"id":7,"name":"tea"}"#);
        assert_eq!(json.headers.get("content-type"), Some("application/json"));
        // A value serde_json refuses (a map keyed by lists) is a 500, not a panic.
        let refused = HttpResponse::json(&BTreeMap::from([(vec![1u8], 1u8)]));
        assert_eq!(refused.status, StatusCode::ERROR);
        let said = String::from_utf8_lossy(&refused.body).into_owned();
        assert!(
            said.starts_with("the answer cannot be written as JSON: key must be a string"),
            "{said}"
        );

        let missing = HttpResponse::status(404, "no such thing");
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.body, b"no such thing");
        assert_eq!(
            missing.headers.get("content-type"),
            Some("text/plain; charset=utf-8")
        );
        let conflict = HttpResponse::status(StatusCode::CONFLICT, String::from("taken"));
        assert_eq!(conflict.status, StatusCode::CONFLICT);
        // Not a status: 500 saying so, not a panic.
        let nonsense = HttpResponse::status(999, "?");
        assert_eq!(nonsense.status, StatusCode::ERROR);
        assert_eq!(
            String::from_utf8_lossy(&nonsense.body),
            "invalid status code 999: a status code is 100-599"
        );
        let built = HttpResponse::new(StatusCode::CREATED).with_body("made");
        assert_eq!(
            (built.status, built.body.as_slice()),
            (StatusCode::CREATED, &b"made"[..])
        );
    }

    #[test]
    fn bytes_and_json_bodies_survive_json_serialization() {
        let substance = Substance::List(vec![
            Substance::Bin(vec![0, 255]),
            Substance::json(&[1, 2]).unwrap(),
        ]);
        let text = serde_json::to_string(&substance).unwrap();
        assert_eq!(text, r#"{"List":[{"Bin":[0,255]},{"Json":"[1,2]"}]}"#);
        assert_eq!(serde_json::from_str::<Substance>(&text).unwrap(), substance);
        assert!(serde_json::from_str::<Substance>(r#"{"Json":"{bad"}"#).is_err());
    }

    #[test]
    fn nesting_is_limited_both_ways() {
        fn nest(depth: u32) -> Substance {
            let mut substance = Substance::Empty;
            for _ in 0..depth {
                substance = Substance::List(vec![substance]);
            }
            substance
        }
        let ok = nest(Substance::MAX_DEPTH);
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<Substance>(&text).unwrap(), ok);

        let deep = nest(Substance::MAX_DEPTH + 1);
        let err = serde_json::to_string(&deep).unwrap_err().to_string();
        assert!(err.contains("nest deeper than 32"), "{err}");
        let deep_text = format!("{}\"Empty\"{}", "{\"List\":[".repeat(33), "]}".repeat(33));
        let err = serde_json::from_str::<Substance>(&deep_text).unwrap_err();
        assert!(err.to_string().contains("nest deeper than 32"), "{err}");
        // The depth counter is back to zero after errors.
        assert_eq!(serde_json::from_str::<Substance>(&text).unwrap(), ok);
    }
}
