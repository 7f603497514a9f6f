//! Route tables (SPEC §7, §11.1): which handler of a mechtron answers a wave, chosen by the
//! wave's method and path, and the conversions that make handler signatures plain — inputs
//! from the wave ([`FromWave`]), outputs into a reflection ([`IntoReflected`]).
//!
//! A route string is a [`MethodPattern`] optionally followed by a path regex that must match
//! the whole path — the path without its query, so `/greet/ann?x=1` is matched as
//! `/greet/ann` and the query read with `ctx.query()`: `Ext<Hello>`,
//! `Http<Get>/greet/(?P<who>.*)`, `Cmd<*>`, `*`. `#[handlers]` checks every route string at
//! compile time with the same parsers used here. The regex's named captures are route
//! variables, read with `ctx.var(name)` or taken as typed handler arguments
//! (`#[var] id: u64`, through [`FromVar`]).

use std::any::Any;
use std::fmt;
use std::str::FromStr;

use cosmic_space::{
    Cursor, Details, DirectedCore, Env, HttpRequest, HttpResponse, Method, MethodPattern,
    ParseError, PathRegex, Point, ReflectedCore, RouteVars, Span, Status, StatusCode, Stub,
    Substance, SubstanceError, SubstanceKind,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ctx::Ctx;
use crate::error::Error;

/// The part of a route string before the path: the methods it takes, and the path regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSelector {
    /// Which methods the route takes.
    pub method: MethodPattern,
    /// Which paths it takes (the whole path must match); `None` for every path.
    pub path: Option<PathRegex>,
}

impl RouteSelector {
    /// Parses a route string: a method pattern, then optionally (after optional spaces) a path
    /// regex beginning with `/`.
    pub fn parse(source: &str) -> Result<RouteSelector, ParseError> {
        let mut c = Cursor::new("route", source);
        c.skip_ws();
        let method = MethodPattern::parse(&mut c)?;
        c.skip_ws();
        let path = if c.at_end() {
            None
        } else if c.peek() == Some('/') {
            let start = c.pos();
            let rest = c.rest().trim_end();
            let regex = PathRegex::new(rest).map_err(|(span, message)| {
                c.error_span(Span::new(start + span.start, start + span.end), message)
            })?;
            Some(regex)
        } else {
            return Err(c.error("expected the end of the route or a path regex beginning with '/'"));
        };
        Ok(RouteSelector { method, path })
    }

    /// Whether the selector takes `method` at `path` (a path without its query); on a match,
    /// returns the path regex's named captures.
    pub fn select(&self, method: &Method, path: &str) -> Option<RouteVars> {
        if !self.method.matches(method) {
            return None;
        }
        let mut vars = RouteVars::new();
        if let Some(regex) = &self.path {
            let mut env = Env::new();
            if !regex.capture_into(path, &mut env) {
                return None;
            }
            for name in regex.capture_names() {
                vars.insert(
                    name.to_string(),
                    env.var(name).unwrap_or_default().to_string(),
                );
            }
        }
        Some(vars)
    }
}

impl fmt::Display for RouteSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}{}", self.method, path),
            None => write!(f, "{}", self.method),
        }
    }
}

/// A handler as the route table stores it: the mechtron, the context, the answer.
pub type HandlerFn<M> = fn(&mut M, &mut Ctx) -> ReflectedCore;

/// One route of a mechtron: the source string, its parsed selector, its handler.
pub struct Route<M> {
    source: &'static str,
    selector: Result<RouteSelector, String>,
    handler: HandlerFn<M>,
}

impl<M> fmt::Debug for Route<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<M> Route<M> {
    /// The route `source` (checked at compile time by `#[handlers]`) answered by `handler`.
    pub fn new(source: &'static str, handler: HandlerFn<M>) -> Route<M> {
        Route {
            source,
            selector: RouteSelector::parse(source).map_err(|e| e.message),
            handler,
        }
    }

    /// The route string as written.
    pub fn source(&self) -> &'static str {
        self.source
    }
}

/// A mechtron's routes in the order written: the first that takes a wave answers it.
pub struct RouteTable<M> {
    routes: Vec<Route<M>>,
}

impl<M> fmt::Debug for RouteTable<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.routes).finish()
    }
}

impl<M> RouteTable<M> {
    /// A table of `routes`, tried in order.
    pub fn new(routes: Vec<Route<M>>) -> RouteTable<M> {
        RouteTable { routes }
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route<M>] {
        &self.routes
    }

    /// Answers the wave in `ctx` with the first route that takes it. Without one, `Cmd<Read>`
    /// answers the mechtron's details and everything else 404 "no route".
    pub fn dispatch(&self, mechtron: &mut M, ctx: &mut Ctx) -> ReflectedCore {
        for route in &self.routes {
            let selector = match &route.selector {
                Ok(selector) => selector,
                Err(message) => {
                    return ReflectedCore::error(
                        StatusCode::ERROR,
                        format!("route '{}' is invalid: {message}", route.source),
                    );
                }
            };
            if let Some(vars) = selector.select(ctx.method(), ctx.path()) {
                ctx.set_vars(vars);
                return (route.handler)(mechtron, ctx);
            }
        }
        match ctx.method() {
            Method::Cmd(cosmic_space::CmdMethod::Read) => ReflectedCore::ok(ctx.details().clone()),
            method => ReflectedCore::error(
                StatusCode::NOT_FOUND,
                format!("no route for {method} {}", ctx.path()),
            ),
        }
    }
}

/// A handler input made from the wave being answered (usually from its body). A wave it
/// cannot be made from is answered with the error's status (400 for a body of the wrong
/// kind) and message, without calling the handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler input",
    label = "not made from a wave",
    note = "handler inputs: Substance, String, Vec<u8>, (), bool, i64, i32, u32, u64, Point, \
            Details, Stub, Status, DirectedCore, HttpRequest, Json<T>, Option<T> of those"
)]
pub trait FromWave: Sized {
    /// The input for the wave `ctx` holds.
    fn from_wave(ctx: &Ctx) -> Result<Self, Error>;
}

fn bad_body(error: SubstanceError) -> Error {
    Error::Substance(error)
}

fn bad_request(message: impl Into<String>) -> Error {
    Error::status(StatusCode::BAD_REQUEST, message)
}

/// `FromWave` through `TryFrom<Substance>` on a clone of the body.
macro_rules! from_body {
    ($($ty:ty),+ $(,)?) => {$(
        impl FromWave for $ty {
            fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
                <$ty>::try_from(ctx.body().clone()).map_err(bad_body)
            }
        }
    )+};
}

from_body!(bool, i64, i32, u32, u64, Point, Details, Stub, Status, ());

impl FromWave for Substance {
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        Ok(ctx.body().clone())
    }
}

impl FromWave for String {
    /// Text, or bytes that are UTF-8 (an HTTP body).
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        match ctx.body() {
            Substance::Text(text) => Ok(text.clone()),
            Substance::Bin(bytes) => String::from_utf8(bytes.clone())
                .map_err(|_| bad_request("the body is not UTF-8 text")),
            other => Err(bad_body(SubstanceError::WrongKind {
                expected: SubstanceKind::Text,
                found: other.kind(),
            })),
        }
    }
}

impl FromWave for Vec<u8> {
    /// Bytes, or the bytes of text.
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        match ctx.body() {
            Substance::Bin(bytes) => Ok(bytes.clone()),
            Substance::Text(text) => Ok(text.clone().into_bytes()),
            other => Vec::<u8>::try_from(other.clone()).map_err(bad_body),
        }
    }
}

impl FromWave for DirectedCore {
    /// The whole request: method, path, headers and body.
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        Ok(ctx.wave().core().clone())
    }
}

impl FromWave for HttpRequest {
    /// The HTTP request: the body itself when it is a [`Substance::HttpRequest`], else made
    /// from an `Http<…>` wave's method, path (its `?query` split off into `query`), headers
    /// and body.
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        if let Substance::HttpRequest(request) = ctx.body() {
            return Ok(request.clone());
        }
        let method = match ctx.method() {
            Method::Http(method) => *method,
            other => {
                return Err(bad_request(format!(
                    "expected an Http<…> wave, found {other}"
                )));
            }
        };
        let body = match ctx.body() {
            Substance::Empty => Vec::new(),
            Substance::Bin(bytes) => bytes.clone(),
            Substance::Text(text) => text.clone().into_bytes(),
            other => {
                return Err(bad_request(format!(
                    "an HTTP body is bytes or text, found {}",
                    other.kind()
                )));
            }
        };
        let mut request = HttpRequest::new(method, ctx.wave().path());
        request.headers = ctx.headers().clone();
        request.body = body;
        Ok(request)
    }
}

impl<T: FromWave> FromWave for Option<T> {
    /// `None` for an empty body.
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        if ctx.body().is_empty() {
            Ok(None)
        } else {
            T::from_wave(ctx).map(Some)
        }
    }
}

/// A route variable as a handler argument: `#[var] id: u64` is the variable `id` the route
/// captured (`(?P<id>[0-9]+)`), percent-decoded (`ann%20lee` is `ann lee`) and converted.
/// Text that does not convert is answered 400 naming the variable and its value, without
/// calling the handler. `Option<T>` is `None` for an empty capture (an optional group that
/// did not match).
///
/// Implemented for `String`, `bool`, `char`, the integer and float types and [`Point`]
/// (through their `FromStr`); implement it for types of your own:
///
/// ```
/// use cosmic_mechtron::FromVar;
///
/// #[derive(Debug, PartialEq)]
/// enum Colour { Red, Blue }
///
/// impl FromVar for Colour {
///     type Error = String;
///     fn from_var(text: &str) -> Result<Colour, String> {
///         match text {
///             "red" => Ok(Colour::Red),
///             "blue" => Ok(Colour::Blue),
///             other => Err(format!("{other} is not red or blue")),
///         }
///     }
/// }
/// assert_eq!(Colour::from_var("red"), Ok(Colour::Red));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a route variable",
    label = "not made from a route variable's text",
    note = "route variables: String, bool, char, integers, f32, f64, Point, Option<T> of those; \
            implement `cosmic_mechtron::FromVar` for a type of your own"
)]
pub trait FromVar: Sized {
    /// Why a text is not a value of this type (shown to the client in the 400).
    type Error: fmt::Display;

    /// The value the variable's text (percent-decoded) stands for.
    fn from_var(text: &str) -> Result<Self, Self::Error>;
}

/// `FromVar` through `FromStr`.
macro_rules! var_by_parse {
    ($($ty:ty),+ $(,)?) => {$(
        impl FromVar for $ty {
            type Error = <$ty as FromStr>::Err;
            fn from_var(text: &str) -> Result<Self, Self::Error> {
                text.parse()
            }
        }
    )+};
}

var_by_parse!(
    String, bool, char, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64,
    Point,
);

impl<T: FromVar> FromVar for Option<T> {
    type Error = T::Error;

    /// `None` for an empty capture, else the value.
    fn from_var(text: &str) -> Result<Self, Self::Error> {
        if text.is_empty() {
            Ok(None)
        } else {
            T::from_var(text).map(Some)
        }
    }
}

/// The name of `T` as a 400 says it: no module paths, `Option<…>` unwrapped (`u64`,
/// `String`, `Point`).
pub(crate) fn var_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut short = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else {
            short.push_str(&segment);
            segment.clear();
            short.push(c);
        }
    }
    short.push_str(&segment);
    match short
        .strip_prefix("Option<")
        .and_then(|s| s.strip_suffix('>'))
    {
        Some(inner) => inner.to_string(),
        None => short,
    }
}

/// A serde value carried as a [`Substance::Json`] body: `Json<Order>` as a handler input
/// deserializes the body, as an output serializes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromWave for Json<T> {
    /// The body's JSON (a `Json` body, or text or bytes holding JSON) as `T`.
    fn from_wave(ctx: &Ctx) -> Result<Self, Error> {
        let value = match ctx.body() {
            Substance::Json(json) => json.to_value::<T>(),
            Substance::Text(text) => cosmic_space::Json::new(text).and_then(|j| j.to_value()),
            Substance::Bin(bytes) => std::str::from_utf8(bytes)
                .map_err(|_| SubstanceError::Json("the body is not UTF-8".to_string()))
                .and_then(cosmic_space::Json::new)
                .and_then(|j| j.to_value()),
            other => Err(SubstanceError::WrongKind {
                expected: SubstanceKind::Json,
                found: other.kind(),
            }),
        };
        value.map(Json).map_err(bad_body)
    }
}

/// A handler output: what the wave is answered with.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a handler",
    label = "not convertible into a reflection",
    note = "handler outputs: (), String, &'static str, Vec<u8>, Substance, bool, i64, i32, u32, \
            Point, Details, Status, Json<T>, HttpResponse, ReflectedCore, Result<T, E: Display>"
)]
pub trait IntoReflected {
    /// The reflection answering the wave.
    fn into_reflected(self) -> ReflectedCore;
}

/// `IntoReflected` as a 200 through `Into<Substance>`.
macro_rules! ok_body {
    ($($ty:ty),+ $(,)?) => {$(
        impl IntoReflected for $ty {
            fn into_reflected(self) -> ReflectedCore {
                ReflectedCore::ok(self)
            }
        }
    )+};
}

ok_body!(
    (),
    String,
    &'static str,
    Vec<u8>,
    Substance,
    bool,
    i64,
    i32,
    u32,
    Point,
    Details,
    Stub,
    Status,
);

impl IntoReflected for ReflectedCore {
    fn into_reflected(self) -> ReflectedCore {
        self
    }
}

impl IntoReflected for HttpResponse {
    /// The response's status and headers, its body as [`Substance::Bin`] (empty stays empty).
    fn into_reflected(self) -> ReflectedCore {
        let body = if self.body.is_empty() {
            Substance::Empty
        } else {
            Substance::Bin(self.body)
        };
        ReflectedCore {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

impl<T: Serialize> IntoReflected for Json<T> {
    /// 200 with the value as JSON, or 500 when it does not serialize.
    fn into_reflected(self) -> ReflectedCore {
        match Substance::json(&self.0) {
            Ok(body) => ReflectedCore::ok(body),
            Err(error) => ReflectedCore::error(StatusCode::ERROR, error.to_string()),
        }
    }
}

impl<T: IntoReflected, E: fmt::Display + 'static> IntoReflected for Result<T, E> {
    /// `Ok` as `T` answers; `Err` as a failure with the error's message: the status of an
    /// [`Error`], 500 for any other error type.
    fn into_reflected(self) -> ReflectedCore {
        match self {
            Ok(value) => value.into_reflected(),
            Err(error) => match (&error as &dyn Any).downcast_ref::<Error>() {
                Some(error) => ReflectedCore::from(error.clone()),
                None => ReflectedCore::error(StatusCode::ERROR, error.to_string()),
            },
        }
    }
}
