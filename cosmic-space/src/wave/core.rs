//! The cores of waves (SPEC §5.1): what a directed wave asks (method, path, headers, body),
//! what a reflected wave answers (status, headers, body), and how a wave is handled (priority,
//! wait time).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::method::Method;
use crate::substance::{Errors, HttpRequest, Substance};
use crate::wave::WaveError;
use crate::wave::query::{Query, split_target};

/// An HTTP-style status code (100–599) carried by every reflection.
///
/// The codes mean what they mean in HTTP (SPEC §5.1): 200 ok, 404 no such particle or route,
/// 408 the exchange timed out, 500 the target failed, 503 not ready, and so on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct StatusCode(u16);

impl StatusCode {
    /// 200: the target did what was asked.
    pub const OK: StatusCode = StatusCode(200);
    /// 201: something was created.
    pub const CREATED: StatusCode = StatusCode(201);
    /// 202: accepted, to be done later.
    pub const ACCEPTED: StatusCode = StatusCode(202);
    /// 204: done, nothing to say.
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    /// 206: part of the content, as a `range` header asked.
    pub const PARTIAL_CONTENT: StatusCode = StatusCode(206);
    /// 301: moved for good.
    pub const MOVED_PERMANENTLY: StatusCode = StatusCode(301);
    /// 302: found elsewhere.
    pub const FOUND: StatusCode = StatusCode(302);
    /// 304: not modified.
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    /// 400: the wave's input was bad.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401: no credentials, or bad ones.
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403: the agent may not do this.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404: no such particle or route.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405: the target does not answer this method.
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 408: the exchange timed out (the wave's wait time passed).
    pub const TIMEOUT: StatusCode = StatusCode(408);
    /// 409: already exists, or conflicts with the target's state.
    pub const CONFLICT: StatusCode = StatusCode(409);
    /// 413: the body or frame is too large.
    pub const PAYLOAD_TOO_LARGE: StatusCode = StatusCode(413);
    /// 412: a condition of the request (`if-match`, `if-none-match`) does not hold.
    pub const PRECONDITION_FAILED: StatusCode = StatusCode(412);
    /// 416: the `range` asked lies outside the content.
    pub const RANGE_NOT_SATISFIABLE: StatusCode = StatusCode(416);
    /// 415: the body is of a kind the target does not take.
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 429: too many waves in flight.
    pub const TOO_MANY_REQUESTS: StatusCode = StatusCode(429);
    /// 500: the target failed.
    pub const ERROR: StatusCode = StatusCode(500);
    /// 501: the target does not implement this.
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 502: a target behind a gateway answered badly.
    pub const BAD_GATEWAY: StatusCode = StatusCode(502);
    /// 503: the target is not ready.
    pub const UNAVAILABLE: StatusCode = StatusCode(503);
    /// 504: a target behind a gateway did not answer in time.
    pub const GATEWAY_TIMEOUT: StatusCode = StatusCode(504);

    /// The status `code`, if it is a valid HTTP status (100–599).
    pub fn new(code: u16) -> Result<StatusCode, WaveError> {
        if (100..=599).contains(&code) {
            Ok(StatusCode(code))
        } else {
            Err(WaveError::InvalidStatus(code))
        }
    }

    /// The number.
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// 2xx: success.
    pub fn is_ok(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 4xx: the sender's fault.
    pub fn is_client_error(self) -> bool {
        (400..500).contains(&self.0)
    }

    /// 5xx: the target's (or the infrastructure's) fault.
    pub fn is_server_error(self) -> bool {
        (500..600).contains(&self.0)
    }

    /// The HTTP reason phrase (`"Not Found"`), or `""` for codes without a well-known one.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            101 => "Switching Protocols",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            408 => "Request Timeout",
            409 => "Conflict",
            410 => "Gone",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Payload Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            422 => "Unprocessable Content",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "",
        }
    }
}

impl TryFrom<u16> for StatusCode {
    type Error = WaveError;
    fn try_from(code: u16) -> Result<Self, WaveError> {
        StatusCode::new(code)
    }
}

impl From<StatusCode> for u16 {
    fn from(status: StatusCode) -> u16 {
        status.0
    }
}

impl Default for StatusCode {
    fn default() -> Self {
        StatusCode::OK
    }
}

impl fmt::Display for StatusCode {
    /// `404 Not Found`, or just the number when it has no reason phrase.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            "" => write!(f, "{}", self.0),
            reason => write!(f, "{} {reason}", self.0),
        }
    }
}

impl fmt::Debug for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusCode({})", self.0)
    }
}

/// The headers of a wave or an HTTP message: name–value pairs in insertion order.
///
/// Names are case-insensitive and stored in lower case; a name may repeat (`set-cookie`),
/// which is why this is an ordered list of pairs rather than a map.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Sets `name` to `value`, replacing every earlier value of `name`.
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        let name = name.as_ref();
        let value = value.into();
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(first) => {
                self.0[first].1 = value;
                let mut i = first + 1;
                while i < self.0.len() {
                    if self.0[i].0.eq_ignore_ascii_case(name) {
                        self.0.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            None => self.0.push((name.to_ascii_lowercase(), value)),
        }
    }

    /// Adds a value for `name`, keeping the values it already has.
    pub fn append(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        self.0
            .push((name.as_ref().to_ascii_lowercase(), value.into()));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` has a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every value of `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.0.len()
    }

    /// Every `(name, value)` pair, in order; names are lower case.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn normalised(mut pairs: Vec<(String, String)>) -> Headers {
        for (name, _) in &mut pairs {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                name.make_ascii_lowercase();
            }
        }
        Headers(pairs)
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    /// Collects pairs with [`Headers::append`], so repeated names keep every value.
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (name, value) in iter {
            headers.append(name, value);
        }
        headers
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Headers {
    /// Names from outside are lower-cased, so the invariant holds whatever the sender did.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<(String, String)>::deserialize(deserializer).map(Headers::normalised)
    }
}

/// How urgently the infrastructure should move a wave.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Priority {
    /// Background work.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Ahead of the others.
    High,
}

/// How long a sender waits for a reflection, in milliseconds (a plain number: guests have no
/// clock, and the host measures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WaitTime(u64);

impl WaitTime {
    /// The default: 30 seconds.
    pub const DEFAULT: WaitTime = WaitTime(30_000);

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> WaitTime {
        WaitTime(millis)
    }

    /// `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> WaitTime {
        WaitTime(secs.saturating_mul(1000))
    }

    /// The wait in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The wait as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl Default for WaitTime {
    fn default() -> Self {
        WaitTime::DEFAULT
    }
}

impl From<Duration> for WaitTime {
    /// Whole milliseconds, saturating at `u64::MAX`.
    fn from(duration: Duration) -> WaitTime {
        WaitTime(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for WaitTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// How the infrastructure treats a wave: its priority and how long its sender waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Handling {
    /// How urgent it is.
    pub priority: Priority,
    /// How long to wait for a reflection before answering 408.
    pub wait: WaitTime,
}

/// What a directed wave asks: a method, a URI path (default `/`), headers and a body.
///
/// The path may carry a query as HTTP request targets do (`/greet/ann?x=1`, what the gateway
/// sends): binds and routes match the path without it ([`DirectedCore::route_path`]), the
/// query is read parsed ([`DirectedCore::query`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectedCore {
    /// What to do.
    pub method: Method,
    /// Where, inside the target: a URI path (`/` by default), optionally followed by `?` and
    /// a query.
    pub path: String,
    /// Extra named values.
    pub headers: Headers,
    /// The input.
    pub body: Substance,
}

impl DirectedCore {
    /// `method` on `/` with no headers and an empty body.
    pub fn new(method: Method) -> DirectedCore {
        DirectedCore {
            method,
            path: "/".to_string(),
            headers: Headers::new(),
            body: Substance::Empty,
        }
    }

    /// The same core with `path`.
    pub fn with_path(mut self, path: impl Into<String>) -> DirectedCore {
        self.path = path.into();
        self
    }

    /// The same core with header `name` set to `value`.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> DirectedCore {
        self.headers.insert(name, value);
        self
    }

    /// The same core with `body`.
    pub fn with_body(mut self, body: impl Into<Substance>) -> DirectedCore {
        self.body = body.into();
        self
    }

    /// The path without its query: what binds and routes match (`/greet/ann` of
    /// `/greet/ann?x=1`).
    pub fn route_path(&self) -> &str {
        split_target(&self.path).0
    }

    /// The path's query as written, without the `?` (`x=1` of `/greet/ann?x=1`), if it has
    /// one.
    pub fn raw_query(&self) -> Option<&str> {
        split_target(&self.path).1
    }

    /// The path's query, parsed (empty when it has none).
    pub fn query(&self) -> Query {
        Query::of_target(&self.path)
    }
}

impl From<HttpRequest> for DirectedCore {
    /// The core of an `Http<…>` wave carrying `request` the way the gateway sends one: its
    /// method, its path with `?query`, its headers, its body as `Bin` (empty as `Empty`).
    fn from(request: HttpRequest) -> DirectedCore {
        let path = match &request.query {
            Some(query) => format!("{}?{query}", request.path),
            None => request.path,
        };
        DirectedCore {
            method: Method::Http(request.method),
            path,
            headers: request.headers,
            body: if request.body.is_empty() {
                Substance::Empty
            } else {
                Substance::Bin(request.body)
            },
        }
    }
}

/// What a reflected wave answers: a status, headers and a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReflectedCore {
    /// How it went.
    pub status: StatusCode,
    /// Extra named values.
    pub headers: Headers,
    /// The answer (for errors, [`Substance::Errors`]).
    pub body: Substance,
}

impl ReflectedCore {
    /// 200 with `body`.
    pub fn ok(body: impl Into<Substance>) -> ReflectedCore {
        ReflectedCore::status(StatusCode::OK).with_body(body)
    }

    /// `status` with an empty body.
    pub fn status(status: StatusCode) -> ReflectedCore {
        ReflectedCore {
            status,
            headers: Headers::new(),
            body: Substance::Empty,
        }
    }

    /// `status` with `message` as its body ([`Substance::Errors`]).
    pub fn error(status: StatusCode, message: impl Into<String>) -> ReflectedCore {
        ReflectedCore::status(status).with_body(Errors::one(message))
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ReflectedCore {
        ReflectedCore::error(StatusCode::BAD_REQUEST, message)
    }

    /// 403: the agent may not do this.
    pub fn forbidden() -> ReflectedCore {
        ReflectedCore::status(StatusCode::FORBIDDEN)
    }

    /// 404: no such particle or route.
    pub fn not_found() -> ReflectedCore {
        ReflectedCore::status(StatusCode::NOT_FOUND)
    }

    /// 408: the wait time passed without an answer.
    pub fn timeout() -> ReflectedCore {
        ReflectedCore::status(StatusCode::TIMEOUT)
    }

    /// 503: the target is not ready.
    pub fn unavailable() -> ReflectedCore {
        ReflectedCore::status(StatusCode::UNAVAILABLE)
    }

    /// The same core with header `name` set to `value`.
    pub fn with_header(mut self, name: impl AsRef<str>, value: impl Into<String>) -> ReflectedCore {
        self.headers.insert(name, value);
        self
    }

    /// The same core with `body`.
    pub fn with_body(mut self, body: impl Into<Substance>) -> ReflectedCore {
        self.body = body.into();
        self
    }

    /// Whether the status is 2xx.
    pub fn is_ok(&self) -> bool {
        self.status.is_ok()
    }

    /// The error message the body carries, if any: the joined [`Errors`], or the text of a
    /// text body on a failure status.
    pub fn error_message(&self) -> Option<String> {
        match &self.body {
            Substance::Errors(errors) => Some(errors.to_string()),
            Substance::Text(text) if !self.is_ok() => Some(text.clone()),
            _ => None,
        }
    }

    /// The body of a 2xx answer, or [`WaveError::Failed`] with the status and message.
    pub fn into_result(self) -> Result<Substance, WaveError> {
        if self.is_ok() {
            Ok(self.body)
        } else {
            let message = self
                .error_message()
                .unwrap_or_else(|| self.status.reason().to_string());
            Err(WaveError::Failed {
                status: self.status,
                message,
            })
        }
    }
}

impl From<Substance> for ReflectedCore {
    /// A 200 answer carrying the substance.
    fn from(body: Substance) -> Self {
        ReflectedCore::ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directed_core_routes_on_its_path_without_the_query() {
        let core = DirectedCore::new(Method::Http(crate::method::HttpMethod::Get))
            .with_path("/greet/ann?x=1&y=two&x=3");
        assert_eq!(core.route_path(), "/greet/ann");
        assert_eq!(core.raw_query(), Some("x=1&y=two&x=3"));
        assert_eq!(core.query().get_all("x").collect::<Vec<_>>(), ["1", "3"]);
        let plain = core.clone().with_path("/greet/ann");
        assert_eq!(plain.route_path(), "/greet/ann");
        assert_eq!(plain.raw_query(), None);
        assert!(plain.query().is_empty());
    }

    #[test]
    fn an_http_request_becomes_the_core_the_gateway_would_send() {
        let request = HttpRequest::new(crate::method::HttpMethod::Post, "/greet/ann?x=1")
            .with_header("X-Client", "tester")
            .with_body("hi");
        let core = DirectedCore::from(request);
        assert_eq!(core.method.to_string(), "Http<Post>");
        assert_eq!(core.path, "/greet/ann?x=1");
        assert_eq!(core.route_path(), "/greet/ann");
        assert_eq!(core.headers.get("x-client"), Some("tester"));
        assert_eq!(core.body, Substance::Bin(b"hi".to_vec()));
        let bare = DirectedCore::from(HttpRequest::new(crate::method::HttpMethod::Get, "/"));
        assert_eq!((bare.path.as_str(), &bare.body), ("/", &Substance::Empty));
    }

    #[test]
    fn status_codes_are_validated() {
        assert_eq!(StatusCode::new(404), Ok(StatusCode::NOT_FOUND));
        assert_eq!(StatusCode::new(99), Err(WaveError::InvalidStatus(99)));
        assert_eq!(StatusCode::new(600), Err(WaveError::InvalidStatus(600)));
        assert_eq!(StatusCode::new(599).map(StatusCode::as_u16), Ok(599));
        assert_eq!(StatusCode::try_from(100u16).map(u16::from), Ok(100));
    }

    #[test]
    fn status_code_classes_and_phrases() {
        assert!(StatusCode::OK.is_ok());
        assert!(StatusCode::NO_CONTENT.is_ok());
        assert!(!StatusCode::FOUND.is_ok());
        assert!(StatusCode::CONFLICT.is_client_error());
        assert!(!StatusCode::CONFLICT.is_server_error());
        assert!(StatusCode::GATEWAY_TIMEOUT.is_server_error());
        assert_eq!(StatusCode::TIMEOUT.to_string(), "408 Request Timeout");
        assert_eq!(
            StatusCode::UNAVAILABLE.to_string(),
            "503 Service Unavailable"
        );
        assert_eq!(
            StatusCode::new(599).map(|s| s.to_string()),
            Ok("599".into())
        );
        assert_eq!(format!("{:?}", StatusCode::ERROR), "StatusCode(500)");
    }

    #[test]
    fn header_names_are_case_insensitive_and_lower_cased() {
        let mut headers = Headers::new();
        headers.insert("Content-Type", "text/plain");
        headers.append("Set-Cookie", "a=1");
        headers.append("set-cookie", "b=2");
        assert_eq!(headers.get("content-type"), Some("text/plain"));
        assert_eq!(headers.get("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(
            headers.get_all("Set-Cookie").collect::<Vec<_>>(),
            ["a=1", "b=2"]
        );
        assert_eq!(
            headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["content-type", "set-cookie", "set-cookie"]
        );
        headers.insert("SET-COOKIE", "c=3");
        assert_eq!(headers.get_all("set-cookie").collect::<Vec<_>>(), ["c=3"]);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.remove("Content-Type"), 1);
        assert!(!headers.contains("content-type"));
        assert_eq!(headers.remove("nope"), 0);
    }

    #[test]
    fn headers_from_outside_are_normalised() {
        let headers = Headers::normalised(vec![("X-Trace".into(), "1".into())]);
        assert_eq!(headers.iter().next(), Some(("x-trace", "1")));
        let collected: Headers = [("A", "1"), ("a", "2")].into_iter().collect();
        assert_eq!(collected.get_all("A").count(), 2);
    }

    #[test]
    fn wait_times() {
        assert_eq!(WaitTime::default().as_millis(), 30_000);
        assert_eq!(WaitTime::from_secs(2), WaitTime::from_millis(2000));
        assert_eq!(WaitTime::from_secs(u64::MAX).as_millis(), u64::MAX);
        assert_eq!(
            WaitTime::from(Duration::from_micros(2500)),
            WaitTime::from_millis(2)
        );
        assert_eq!(
            WaitTime::from_millis(1500).as_duration(),
            Duration::from_millis(1500)
        );
        assert_eq!(WaitTime::from_millis(5).to_string(), "5ms");
        assert_eq!(Handling::default().priority, Priority::Normal);
        assert!(Priority::High > Priority::Normal && Priority::Normal > Priority::Low);
    }

    #[test]
    fn reflected_cores() {
        let ok = ReflectedCore::ok("hi");
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.clone().into_result(), Ok(Substance::Text("hi".into())));
        assert_eq!(ok.error_message(), None);

        let err = ReflectedCore::error(StatusCode::CONFLICT, "already exists");
        assert_eq!(err.body, Substance::Errors(Errors::one("already exists")));
        assert_eq!(err.error_message(), Some("already exists".to_string()));
        assert_eq!(
            err.into_result(),
            Err(WaveError::Failed {
                status: StatusCode::CONFLICT,
                message: "already exists".into()
            })
        );
        assert_eq!(
            ReflectedCore::not_found().into_result(),
            Err(WaveError::Failed {
                status: StatusCode::NOT_FOUND,
                message: "Not Found".into()
            })
        );
        let text = ReflectedCore::status(StatusCode::ERROR).with_body("boom");
        assert_eq!(text.error_message(), Some("boom".into()));
        assert_eq!(ReflectedCore::timeout().status.as_u16(), 408);
        assert_eq!(ReflectedCore::forbidden().status.as_u16(), 403);
        assert_eq!(ReflectedCore::unavailable().status.as_u16(), 503);
        assert_eq!(ReflectedCore::bad_request("x").status.as_u16(), 400);
        assert_eq!(
            ReflectedCore::from(Substance::Bool(true)),
            ReflectedCore::ok(true)
        );
    }

    #[test]
    fn directed_core_defaults() {
        let core = DirectedCore::new(Method::ext("Hello").unwrap());
        assert_eq!(core.path, "/");
        assert!(core.headers.is_empty());
        assert_eq!(core.body, Substance::Empty);
        let core = core
            .with_path("/greet")
            .with_header("X-A", "1")
            .with_body(7i64);
        assert_eq!(core.path, "/greet");
        assert_eq!(core.headers.get("x-a"), Some("1"));
        assert_eq!(core.body, Substance::Int(7));
    }
}
