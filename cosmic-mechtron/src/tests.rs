//! The SDK end to end, natively: macros, route dispatch, conversions, the test context and
//! the ABI's frame functions.

use std::rc::Rc;

use cosmic_space::{DirectedWave, Properties, Ripple, Signal, Status, Stub, WaveId, wire};

use crate::abi::{self, LogRecord};
use crate::prelude::*;
use crate::testing::{TestHost, TestMechtron};
use crate::{Registration, RouteSelector};

#[mechtron(with(Counter))]
#[derive(Debug, Default)]
pub struct Hello {
    greeted: u64,
}

#[derive(serde::Serialize)]
struct Item {
    id: u64,
    tags: Vec<String>,
}

#[derive(Debug)]
enum Colour {
    Red,
    Blue,
}

impl FromVar for Colour {
    type Error = String;

    fn from_var(text: &str) -> Result<Colour, String> {
        match text {
            "red" => Ok(Colour::Red),
            "blue" => Ok(Colour::Blue),
            other => Err(format!("{other} is neither red nor blue")),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    item: String,
    count: u32,
}

#[handlers]
impl Hello {
    #[route("Ext<Hello>")]
    fn hello(&mut self, ctx: &mut Ctx, name: String) -> Result<String, Error> {
        self.greeted += 1;
        ctx.info(format!("greeting {name}"));
        Ok(format!("Goodbye, {name}!"))
    }

    #[route("Http<Get>/greet/(?P<who>.*)")]
    fn greet(&self, ctx: &mut Ctx, req: HttpRequest) -> HttpResponse {
        let who = ctx.var("who").unwrap_or_default();
        HttpResponse::ok(format!("Hello, {who}! ({})", req.query.unwrap_or_default()))
            .with_header("Content-Type", "text/plain")
    }

    #[route("Ext<Fail>")]
    fn fail(&self, input: Option<i64>) -> Result<(), Error> {
        match input {
            Some(_) => Err(Error::status(StatusCode::BAD_REQUEST, "no numbers")),
            None => Err(Error::msg("always fails")),
        }
    }

    #[route("Ext<Order>")]
    fn order(&mut self, Json(order): Json<Order>) -> Json<Order> {
        Json(Order {
            item: order.item.to_uppercase(),
            count: order.count * 2,
        })
    }

    #[route("Ext<Relay>")]
    fn relay(&self, ctx: &mut Ctx, to: Point) -> Result<String, Error> {
        ctx.signal(to.clone(), Method::ext("Note")?, "fyi");
        let text = ctx.read(to)?;
        Ok(format!(
            "{} at {}",
            text.as_text().unwrap_or_default(),
            ctx.now()
        ))
    }

    #[route("Ext<Whoami>")]
    #[route("Ext<Me>")]
    fn whoami(&self, ctx: &mut Ctx) -> String {
        format!(
            "{} {}",
            ctx.point(),
            ctx.property("greeting").unwrap_or("none")
        )
    }

    #[route("Ext<Bytes>")]
    fn bytes(&self, bytes: Vec<u8>) -> usize {
        bytes.len()
    }

    #[route("Ext<Unit>")]
    fn unit(&mut self) {
        self.greeted = 100;
    }

    /// A typed route variable, the query, and the response helpers.
    #[route("Http<Get>/items/(?P<id>[^/]+)")]
    fn item(&self, ctx: &mut Ctx, #[var] id: u64) -> HttpResponse {
        let query = ctx.query();
        match query.get("format") {
            None => HttpResponse::text(format!("item {id}")),
            Some("html") => HttpResponse::html(format!("<p>item {id}</p>")),
            Some("json") => HttpResponse::json(&Item {
                id,
                tags: query.get_all("tag").map(str::to_string).collect(),
            }),
            // A map keyed by lists does not serialize as JSON.
            Some("broken") => {
                HttpResponse::json(&std::collections::BTreeMap::from([(vec![id], id)]))
            }
            Some(other) => HttpResponse::status(404, format!("no format {other:?}")),
        }
    }

    /// Several variables, renamed and optional, on two routes.
    #[route("Http<Get>/people/(?P<who>[^/]+)(/(?P<page>[0-9]*))?")]
    #[route("Ext<Person>/people/(?P<who>[^/]+)(/(?P<page>[0-9]*))?")]
    fn person(&self, #[var] who: String, #[var("page")] number: Option<u32>) -> String {
        match number {
            Some(number) => format!("{who}, page {number}"),
            None => format!("{who}, no page"),
        }
    }

    /// Variables mixed with the context and a body input, in any order; a type of our own.
    #[route("Ext<Paint>/paint/(?P<at>[^/]+)/(?P<colour>[a-z]+)")]
    fn paint(
        &self,
        #[var] at: Point,
        ctx: &mut Ctx,
        note: String,
        #[var] colour: Colour,
    ) -> String {
        format!("{at} is {colour:?} ({note}, {})", ctx.path())
    }

    /// A variable named by a keyword, as a raw identifier.
    #[route("Ext<Kind>/kinds/(?P<type>[a-z]+)")]
    fn kind(&self, #[var] r#type: String) -> String {
        r#type
    }

    /// Asks for a variable its route does not capture: the handler's mistake.
    #[route("Ext<Missing>")]
    fn missing(&self, ctx: &mut Ctx) -> Result<String, Error> {
        let id: u64 = ctx.var_as("id")?;
        Ok(id.to_string())
    }

    /// Not a route: left alone.
    fn helper(&self) -> u64 {
        self.greeted
    }
}

impl IntoReflected for usize {
    fn into_reflected(self) -> ReflectedCore {
        ReflectedCore::ok(i64::try_from(self).unwrap_or(i64::MAX))
    }
}

#[mechtron(export = false, name = "tally", init = Counter::start)]
#[derive(Debug)]
pub struct Counter(i64);

impl Counter {
    fn start(details: &Details) -> Result<Counter, String> {
        match details.properties.value("start") {
            Some(start) => start
                .parse()
                .map(Counter)
                .map_err(|_| format!("bad start {start}")),
            None => Ok(Counter(0)),
        }
    }
}

#[handlers]
impl Counter {
    #[route("Ext<Count>")]
    fn count(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

fn text(s: &str) -> Substance {
    Substance::from(s)
}

#[test]
fn routes_dispatch_and_convert() -> Result<(), Error> {
    let mut hello = TestMechtron::<Hello>::new()?;
    let answer = hello.ping("Ext<Hello>", "scott");
    assert_eq!(
        (answer.status, answer.body),
        (StatusCode::OK, text("Goodbye, scott!"))
    );
    assert_eq!(hello.mechtron().greeted, 1);
    assert_eq!(hello.mechtron().helper(), 1);
    assert_eq!(
        hello.logs(),
        [(LogLevel::Info, "greeting scott".to_string())]
    );

    // A body of the wrong kind is a 400 before the handler runs.
    let answer = hello.ping("Ext<Hello>", 3i64);
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error_message().as_deref(),
        Some("expected a Text substance, found Int")
    );
    assert_eq!(hello.mechtron().greeted, 1);

    // Path captures, HTTP requests and responses.
    let answer = hello.request(
        DirectedCore::new(Method::Http(HttpMethod::Get))
            .with_path("/greet/ann?x=1")
            .with_header("Accept", "text/plain"),
    );
    // The route matches the path without the query; the request keeps the query.
    assert_eq!(answer.body, Substance::Bin(b"Hello, ann! (x=1)".to_vec()));
    let answer = hello.get("/greet/ann");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers.get("content-type"), Some("text/plain"));
    assert_eq!(answer.body, Substance::Bin(b"Hello, ann! ()".to_vec()));

    // Errors: the SDK's keep their status, others are 500.
    let answer = hello.ping("Ext<Fail>", ());
    assert_eq!(answer.status, StatusCode::ERROR);
    assert_eq!(answer.error_message().as_deref(), Some("always fails"));
    let answer = hello.ping("Ext<Fail>", 1i64);
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error_message().as_deref(), Some("no numbers"));

    // Json in and out.
    let answer = hello.ping("Ext<Order>", r#"{"item":"tea","count":2}"#);
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, Substance::json(&serde_json_value("TEA", 4))?);
    assert_eq!(
        hello.ping("Ext<Order>", "nope").status,
        StatusCode::BAD_REQUEST
    );

    // Several routes on one handler; details and properties.
    let me = hello.ping("Ext<Me>", ());
    assert_eq!(me.body, text("localhost:test:hello none"));
    assert_eq!(hello.ping("Ext<Whoami>", ()).body, me.body);

    assert_eq!(hello.ping("Ext<Bytes>", "four").body, Substance::Int(4));
    assert_eq!(hello.ping("Ext<Unit>", ()).body, Substance::Empty);
    assert_eq!(hello.mechtron().greeted, 100);
    Ok(())
}

fn serde_json_value(item: &str, count: u32) -> Order {
    Order {
        item: item.to_string(),
        count,
    }
}

#[test]
fn unmatched_waves_get_details_or_404() -> Result<(), Error> {
    let mut hello = TestMechtron::<Hello>::new()?;
    let answer = hello.ping("Cmd<Read>", ());
    match answer.body {
        Substance::Details(details) => {
            assert_eq!(details.stub.point.to_string(), "localhost:test:hello")
        }
        other => panic!("expected details, got {other:?}"),
    }
    let answer = hello.ping("Ext<Nobody>", ());
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.error_message().as_deref(),
        Some("no route for Ext<Nobody> /")
    );
    Ok(())
}

#[test]
fn ctx_sends_through_the_host() -> Result<(), Error> {
    let mut hello = TestMechtron::<Hello>::new()?.answer_pings(|ping| {
        if ping.core.method == Method::Cmd(cosmic_space::CmdMethod::Read) {
            ReflectedCore::ok(format!("contents of {}", ping.to))
        } else {
            ReflectedCore::not_found()
        }
    });
    hello.host().set_now(42);
    let answer = hello.ping(
        "Ext<Relay>",
        Point::from_str_checked("localhost:repo:file")?,
    );
    assert_eq!(
        answer.body,
        text("contents of localhost:repo:file@Core at 42")
    );
    let sent = hello.sent();
    assert_eq!(sent.len(), 2);
    assert!(matches!(&sent[0], DirectedWave::Signal(s) if s.core.body == text("fyi")));
    let DirectedWave::Ping(read) = &sent[1] else {
        panic!("expected a Ping, got {:?}", sent[1]);
    };
    assert_eq!(read.from.to_string(), "localhost:test:hello@Core");
    assert!(!read.id.is_nil());
    assert_ne!(read.id, sent[0].id(), "every wave gets its own id");

    // A failing read surfaces as an error with the target's status.
    let mut hello = TestMechtron::<Hello>::new()?;
    let answer = hello.ping("Ext<Relay>", Point::from_str_checked("localhost:gone")?);
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    Ok(())
}

trait FromStrChecked: Sized {
    fn from_str_checked(s: &str) -> Result<Self, Error>;
}

impl FromStrChecked for Point {
    fn from_str_checked(s: &str) -> Result<Point, Error> {
        Ok(s.parse()?)
    }
}

#[test]
fn custom_names_and_constructors() -> Result<(), Error> {
    assert_eq!(<Counter as crate::Mechtron>::NAME, "tally");
    assert_eq!(<Hello as crate::Mechtron>::NAME, "hello");
    let mut counter = TestMechtron::<Counter>::new()?;
    assert_eq!(counter.ping("Ext<Count>", ()).body, Substance::Int(1));
    assert_eq!(counter.ping("Ext<Count>", ()).body, Substance::Int(2));
    let mut details = counter.mechtron_details();
    details.properties.set("start", "10");
    let mut counter = TestMechtron::<Counter>::with_details(details.clone())?;
    assert_eq!(counter.ping("Ext<Count>", ()).body, Substance::Int(11));
    details.properties.set("start", "ten");
    assert_eq!(
        TestMechtron::<Counter>::with_details(details).err(),
        Some(Error::msg("bad start ten"))
    );
    Ok(())
}

impl<M: crate::Mechtron> TestMechtron<M> {
    fn mechtron_details(&self) -> Details {
        let mut properties = Properties::new();
        properties.set(crate::MECHTRON_PROPERTY, M::NAME);
        Details {
            stub: Stub {
                point: "localhost:test:counter"
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
                kind: Kind::Mechtron,
                status: Status::Ready,
            },
            properties,
        }
    }
}

#[test]
fn route_selectors_parse_and_select() {
    let selector =
        RouteSelector::parse("Http<Get>/greet/(?P<who>[a-z]+)").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(selector.to_string(), "Http<Get>/greet/(?P<who>[a-z]+)");
    let vars = selector.select(&Method::Http(HttpMethod::Get), "/greet/ann");
    assert_eq!(
        vars.and_then(|v| v.get("who").cloned()).as_deref(),
        Some("ann")
    );
    assert_eq!(
        selector.select(&Method::Http(HttpMethod::Post), "/greet/ann"),
        None
    );
    assert_eq!(
        selector.select(&Method::Http(HttpMethod::Get), "/greet/Ann"),
        None
    );
    assert!(RouteSelector::parse("*").is_ok_and(|s| s.path.is_none()));
    let error = RouteSelector::parse("Ext<Hello> x")
        .err()
        .map(|e| e.span.start);
    assert_eq!(error, Some(11));
}

fn details_for(name: &str) -> Details {
    let mut properties = Properties::new();
    properties.set(crate::MECHTRON_PROPERTY, name);
    Details {
        stub: Stub {
            point: "localhost:app:hello"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
            kind: Kind::Mechtron,
            status: Status::Init,
        },
        properties,
    }
}

const REGISTRY: &[Registration] = &[Registration::of::<Hello>(), Registration::of::<Counter>()];

#[test]
fn abi_frames_round_trip_natively() -> Result<(), Error> {
    let host = Rc::new(TestHost::default());

    // mechtron_init: a Details frame in, a Status frame out.
    let frame = wire::encode(&details_for("hello"))?;
    let (guest, status) = abi::init_frame(REGISTRY, &frame, host.clone());
    assert_eq!(wire::decode::<Status>(&status)?, Status::Ready);
    let mut guest = guest.ok_or("init made no guest")?;

    // mechtron_handle: a DirectedWave frame (or a bare Ping frame) in, a ReflectedCore out.
    let ping = cosmic_space::Ping::new(
        "localhost:cli".parse::<Surface>()?,
        "localhost:app:hello".parse::<Surface>()?,
        Method::ext("Hello")?,
        "scott",
    )
    .with_id(WaveId::from_bytes([7; 16]));
    let out = abi::handle_frame(
        Some(&mut guest),
        &wire::encode(&DirectedWave::Ping(ping.clone()))?,
    )
    .ok_or("a Ping must be answered")?;
    assert_eq!(
        wire::decode::<ReflectedCore>(&out)?.body,
        text("Goodbye, scott!")
    );
    let out = abi::handle_frame(Some(&mut guest), &wire::encode(&ping)?).ok_or("answered")?;
    assert_eq!(
        wire::decode::<ReflectedCore>(&out)?.body,
        text("Goodbye, scott!")
    );
    assert_eq!(host.logs().len(), 2);

    // A Signal is absorbed: no answer.
    let signal = Signal::new(
        ping.from.clone(),
        ping.to.clone(),
        Method::ext("Hello")?,
        "x",
    );
    assert_eq!(
        abi::handle_frame(
            Some(&mut guest),
            &wire::encode(&DirectedWave::Signal(signal))?
        ),
        None
    );
    assert_eq!(host.logs().len(), 3, "the signal ran the handler");

    // A Ripple is answered like a Ping.
    let ripple = Ripple::new(
        ping.from.clone(),
        ping.to.clone(),
        Method::ext("Count")?,
        (),
    );
    let out = abi::handle_frame(
        Some(&mut guest),
        &wire::encode(&DirectedWave::Ripple(ripple))?,
    )
    .ok_or("a Ripple is answered")?;
    assert_eq!(
        wire::decode::<ReflectedCore>(&out)?.status,
        StatusCode::NOT_FOUND
    );

    // Garbage is a 400, not a panic; no guest is a 503.
    let out = abi::handle_frame(Some(&mut guest), &[0xff, 0x01]).ok_or("answered")?;
    assert_eq!(
        wire::decode::<ReflectedCore>(&out)?.status,
        StatusCode::BAD_REQUEST
    );
    let out = abi::handle_frame(None, &wire::encode(&ping)?).ok_or("answered")?;
    assert_eq!(
        wire::decode::<ReflectedCore>(&out)?.status,
        StatusCode::UNAVAILABLE
    );

    // The second type of the wasm, chosen by name.
    let frame = wire::encode(&details_for("tally"))?;
    let (guest, status) = abi::init_frame(REGISTRY, &frame, host.clone());
    assert_eq!(wire::decode::<Status>(&status)?, Status::Ready);
    assert!(guest.is_some());
    Ok(())
}

#[test]
fn abi_init_failures_are_fatal() -> Result<(), Error> {
    let host: Rc<dyn crate::Host> = Rc::new(TestHost::default());
    let fatal = |frame: &[u8]| -> Result<Status, Error> {
        let (guest, status) = abi::init_frame(REGISTRY, frame, host.clone());
        assert!(guest.is_none());
        Ok(wire::decode::<Status>(&status)?)
    };
    assert_eq!(
        fatal(&wire::encode(&details_for("nobody"))?)?,
        Status::Fatal("this wasm holds no mechtron named 'nobody' (it holds: hello, tally)".into())
    );
    let mut details = details_for("x");
    details.properties.remove(crate::MECHTRON_PROPERTY);
    assert_eq!(
        fatal(&wire::encode(&details)?)?,
        Status::Fatal(Error::MissingMechtronName.to_string())
    );
    assert!(
        matches!(fatal(&[1, 2, 3])?, Status::Fatal(reason) if reason.starts_with("malformed frame"))
    );
    Ok(())
}

#[test]
fn buffers_and_log_records() -> Result<(), Error> {
    let ptr = abi::alloc_buffer(32);
    assert!(!ptr.is_null());
    // SAFETY: allocated just above with this length.
    unsafe { abi::dealloc_buffer(ptr, 32) };
    let (ptr, len) = abi::into_buffer(vec![1, 2, 3]);
    // SAFETY: into_buffer hands out exactly `len` readable bytes.
    assert_eq!(unsafe { std::slice::from_raw_parts(ptr, len) }, &[1, 2, 3]);
    // SAFETY: from into_buffer with its length.
    unsafe { abi::dealloc_buffer(ptr, len) };
    assert!(!abi::alloc_buffer(0).is_null());

    // A log record is the level then the message: the same bytes as the tuple.
    let record = LogRecord {
        level: LogLevel::Warn,
        message: "careful".into(),
    };
    assert_eq!(
        wire::encode(&record)?,
        wire::encode(&(LogLevel::Warn, "careful"))?
    );
    assert_eq!(wire::pack_ptr_len(8, 3), (8u64 << 32) | 3);
    Ok(())
}

/// The text of an answer's body: `Text`, or `Bin` that is UTF-8 (an `HttpResponse`'s).
fn said(core: &ReflectedCore) -> String {
    match &core.body {
        Substance::Text(text) => text.clone(),
        Substance::Bin(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Substance::Errors(errors) => errors.to_string(),
        other => format!("{other:?}"),
    }
}

fn get(path: &str) -> DirectedCore {
    DirectedCore::new(Method::Http(HttpMethod::Get)).with_path(path)
}

#[test]
fn routes_match_the_path_and_the_query_is_read_apart() -> Result<(), Error> {
    let mut hello = TestMechtron::<Hello>::new()?;
    // As the gateway sends it: the request target, path and query.
    let answer = hello.get("/items/7?format=json&tag=a%20b&tag=c+d&tag=%zz");
    assert_eq!(answer.status, StatusCode::OK, "{}", said(&answer));
    assert_eq!(said(&answer), r#"{"id":7,"tags":["a b","c d","%zz"]}"#);
    assert_eq!(answer.headers.get("content-type"), Some("application/json"));
    // As another particle sends it: an HttpRequest made into a core is the same wave.
    let request = HttpRequest::new(HttpMethod::Get, "/items/7?format=json&tag=x");
    let answer = hello.request(DirectedCore::from(request));
    assert_eq!(said(&answer), r#"{"id":7,"tags":["x"]}"#);
    // No query at all, an empty one, and a query that only looks like a path.
    assert_eq!(said(&hello.get("/items/7")), "item 7");
    assert_eq!(said(&hello.get("/items/7?")), "item 7");
    assert_eq!(said(&hello.get("/items/7?next=/items/8")), "item 7");
    // The query never reaches the route: `/greet/(?P<who>.*)` captures `ann` only.
    assert_eq!(
        said(&hello.get("/greet/ann?x=1&y=two")),
        "Hello, ann! (x=1&y=two)"
    );
    Ok(())
}

#[test]
fn route_variables_convert_to_typed_arguments() -> Result<(), Error> {
    let mut hello = TestMechtron::<Hello>::new()?;
    assert_eq!(said(&hello.get("/items/42")), "item 42");

    // Text that does not convert: 400 naming the variable and the value; the handler is not
    // called.
    let answer = hello.get("/items/abc");
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error_message().as_deref(),
        Some("route variable 'id' = \"abc\" is not a valid u64: invalid digit found in string")
    );
    let answer = hello.get("/items/99999999999999999999999");
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        said(&answer).ends_with("is not a valid u64: number too large to fit in target type"),
        "{}",
        said(&answer)
    );
    let answer = hello.get("/items/-1");
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // Percent-escapes are decoded before converting, malformed ones kept as written.
    assert_eq!(said(&hello.get("/items/%34%32")), "item 42");
    let answer = hello.get("/items/%zz");
    assert_eq!(
        answer.error_message().as_deref(),
        Some("route variable 'id' = \"%zz\" is not a valid u64: invalid digit found in string")
    );

    // Strings are decoded; an optional variable is None when its group did not match, or
    // matched nothing.
    assert_eq!(said(&hello.get("/people/ann%20lee")), "ann lee, no page");
    assert_eq!(said(&hello.get("/people/ann/")), "ann, no page");
    assert_eq!(said(&hello.get("/people/ann/3?x=1")), "ann, page 3");
    let answer = hello
        .request(DirectedCore::new(Method::ext("Person")?).with_path("/people/bob/99999999999"));
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        said(&answer).starts_with("route variable 'page' = \"99999999999\" is not a valid u32")
    );

    // A point, a type of our own, the context and a body, in any order.
    let paint = |path: &str| {
        DirectedCore::new(Method::ext("Paint").unwrap_or_else(|e| panic!("{e}")))
            .with_path(path)
            .with_body("fresh")
    };
    let answer = hello.request(paint("/paint/localhost:shed/red"));
    assert_eq!(
        said(&answer),
        "localhost:shed is Red (fresh, /paint/localhost:shed/red)"
    );
    let answer = hello.request(paint("/paint/localhost:shed/green"));
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error_message().as_deref(),
        Some(
            "route variable 'colour' = \"green\" is not a valid Colour: green is neither red nor blue"
        )
    );
    let answer = hello.request(paint("/paint/Not%20A%20Point/blue"));
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        said(&answer).starts_with("route variable 'at' = \"Not A Point\" is not a valid Point: "),
        "{}",
        said(&answer)
    );

    let kind = DirectedCore::new(Method::ext("Kind")?).with_path("/kinds/star");
    assert_eq!(said(&hello.request(kind)), "star");

    // Asking at run time for a variable the route does not capture is the handler's bug.
    let answer = hello.ping("Ext<Missing>", ());
    assert_eq!(answer.status, StatusCode::ERROR);
    assert_eq!(
        answer.error_message().as_deref(),
        Some("the route captured no variable 'id'")
    );
    Ok(())
}

#[test]
fn http_response_helpers_answer_with_status_type_and_body() -> Result<(), Error> {
    let mut hello = TestMechtron::<Hello>::new()?;
    let text = hello.get("/items/1");
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(text.body, Substance::Bin(b"item 1".to_vec()));
    assert_eq!(
        text.headers.get("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let html = hello.get("/items/1?format=html");
    assert_eq!(said(&html), "<p>item 1</p>");
    assert_eq!(
        html.headers.get("content-type"),
        Some("text/html; charset=utf-8")
    );
    let missing = hello.get("/items/1?format=xml");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(said(&missing), "no format \"xml\"");
    // A value that does not serialize is a 500 saying why, not a panic.
    let broken = hello.get("/items/1?format=broken");
    assert_eq!(broken.status, StatusCode::ERROR);
    assert!(
        said(&broken).starts_with("the answer cannot be written as JSON"),
        "{}",
        said(&broken)
    );
    // A status that is no status is a 500 too.
    assert_eq!(
        HttpResponse::status(1000, "x").into_reflected().status,
        StatusCode::ERROR
    );
    Ok(())
}

#[test]
fn ctx_reads_vars_and_query_directly() -> Result<(), Error> {
    let host: Rc<dyn crate::Host> = Rc::new(TestHost::default());
    let ping = cosmic_space::Ping::with_core(
        "localhost:cli".parse::<Surface>()?,
        "localhost:test:hello".parse::<Surface>()?,
        get("/people/ann%20lee/2?a=1&a=2&b"),
    );
    let mut ctx = Ctx::new(
        DirectedWave::Ping(ping),
        Rc::new(details_for("hello")),
        host,
    );
    let selector = RouteSelector::parse("Http<Get>/people/(?P<who>[^/]+)/(?P<page>[0-9]+)")?;
    let vars = selector
        .select(ctx.method(), ctx.path())
        .ok_or("the route takes the path")?;
    ctx.set_vars(vars);
    assert_eq!(ctx.path(), "/people/ann%20lee/2");
    assert_eq!(ctx.wave().path(), "/people/ann%20lee/2?a=1&a=2&b");
    assert_eq!(ctx.var("who"), Some("ann%20lee"));
    assert_eq!(ctx.var_as::<String>("who")?, "ann lee");
    assert_eq!(ctx.var_as::<u8>("page")?, 2);
    assert_eq!(ctx.var_as::<Option<u8>>("page")?, Some(2));
    assert!(matches!(
        ctx.var_as::<bool>("page"),
        Err(Error::Var { ref name, ref value, ref expected, .. })
            if name == "page" && value == "2" && expected == "bool"
    ));
    let query = ctx.query();
    assert_eq!(query.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(query.get("b"), Some(""));
    assert_eq!(query.get("c"), None);
    Ok(())
}

#[test]
fn variable_type_names_are_short() {
    assert_eq!(crate::route::var_type_name::<u64>(), "u64");
    assert_eq!(crate::route::var_type_name::<String>(), "String");
    assert_eq!(crate::route::var_type_name::<Option<Point>>(), "Point");
    assert_eq!(
        crate::route::var_type_name::<Option<Vec<String>>>(),
        "Vec<String>"
    );
}

/// Ripples what its body says: `"RULE POINT POINT …"` or `"RULE SELECTOR"` (one word with a
/// `*`), RULE being `none`, `first`, `all` or a count; answers how many Echoes came back and
/// their statuses.
#[mechtron(export = false)]
#[derive(Debug, Default)]
pub struct Rippler;

#[handlers]
impl Rippler {
    #[route("Ext<Ripple>")]
    fn ripple(&mut self, ctx: &mut Ctx, request: String) -> Result<String> {
        let mut words = request.split_whitespace();
        let bounce = match words.next() {
            Some("none") => BounceBacks::None,
            Some("first") => BounceBacks::Single,
            Some("all") => BounceBacks::All,
            Some(n) => BounceBacks::Count(n.parse().map_err(|_| Error::msg("a rule"))?),
            None => return Err(Error::msg("a rule")),
        };
        let targets: Vec<&str> = words.collect();
        let method = Method::ext("Hello")?;
        let echoes = match targets.as_slice() {
            [one] if one.contains('*') => {
                ctx.ripple(one.parse::<Selector>()?, method, "rippler", bounce)
            }
            many => {
                let points = many
                    .iter()
                    .map(|p| p.parse::<Point>())
                    .collect::<Result<Vec<_>, _>>()?;
                ctx.ripple(points, method, "rippler", bounce)
            }
        };
        let statuses: Vec<String> = echoes
            .iter()
            .map(|echo| echo.status().as_u16().to_string())
            .collect();
        Ok(format!("{} {}", echoes.len(), statuses.join(",")))
    }

    /// Answers a Ripple with what kind of wave reached it.
    #[route("Ext<Kind>")]
    fn kind(&mut self, ctx: &mut Ctx) -> String {
        ctx.wave().kind().to_string()
    }
}

/// Three recipients answer; a fourth is forbidden.
fn scripted(ripple: &Ripple) -> Vec<Echo> {
    let Recipients::Multi(recipients) = &ripple.to else {
        return vec![ripple.echo(
            ripple.from.clone(),
            ReflectedCore::bad_request("not a list"),
        )];
    };
    recipients
        .iter()
        .map(|to| {
            let core = if to.point.to_string() == "localhost:secret" {
                ReflectedCore::forbidden()
            } else {
                ReflectedCore::ok("Goodbye, rippler!")
            };
            ripple.echo(to.clone(), core)
        })
        .collect()
}

#[test]
fn ctx_ripple_sends_one_ripple_to_the_recipients_with_the_rule() -> Result<(), Error> {
    let mut rippler = TestMechtron::<Rippler>::new()?.answer_ripples(scripted);
    let answer = rippler.ping(
        "Ext<Ripple>",
        "all localhost:a localhost:b localhost:secret",
    );
    assert_eq!(answer.body.as_text(), Some("3 200,200,403"));

    let ripples = rippler.host().ripples();
    let [ripple] = ripples.as_slice() else {
        panic!("expected one Ripple, sent {ripples:?}");
    };
    assert_eq!(ripple.bounce_backs, BounceBacks::All);
    assert_eq!(ripple.core.method, Method::ext("Hello")?);
    assert_eq!(ripple.core.body, Substance::from("rippler"));
    assert_eq!(ripple.from.to_string(), "localhost:test:rippler@Core");
    assert!(!ripple.id.is_nil(), "the SDK draws an id");
    let Recipients::Multi(to) = &ripple.to else {
        panic!("a list of points is a list of their Cores: {}", ripple.to);
    };
    let to: Vec<String> = to.iter().map(ToString::to_string).collect();
    assert_eq!(
        to,
        [
            "localhost:a@Core",
            "localhost:b@Core",
            "localhost:secret@Core"
        ]
    );
    Ok(())
}

#[test]
fn the_test_host_keeps_what_the_rule_asks_for() -> Result<(), Error> {
    let mut rippler = TestMechtron::<Rippler>::new()?.answer_ripples(scripted);
    let targets = "localhost:a localhost:b localhost:c localhost:secret";
    for (rule, expected) in [
        ("none", "0 "),
        ("first", "1 200"),
        ("2", "2 200,200"),
        ("all", "4 200,200,200,403"),
    ] {
        let answer = rippler.ping("Ext<Ripple>", format!("{rule} {targets}"));
        assert_eq!(answer.body.as_text(), Some(expected), "{rule}");
    }
    let rules: Vec<BounceBacks> = rippler
        .host()
        .ripples()
        .iter()
        .map(|ripple| ripple.bounce_backs)
        .collect();
    assert_eq!(
        rules,
        [
            BounceBacks::None,
            BounceBacks::Single,
            BounceBacks::Count(2),
            BounceBacks::All
        ]
    );
    Ok(())
}

#[test]
fn a_selector_travels_as_a_selector_and_unscripted_ripples_get_no_echoes() -> Result<(), Error> {
    let mut rippler = TestMechtron::<Rippler>::new()?;
    let answer = rippler.ping("Ext<Ripple>", "all localhost:workers:*<Mechtron>");
    assert_eq!(answer.body.as_text(), Some("0 "));
    let ripples = rippler.host().ripples();
    let [ripple] = ripples.as_slice() else {
        panic!("expected one Ripple, sent {ripples:?}");
    };
    let selector: Selector = "localhost:workers:*<Mechtron>".parse()?;
    assert_eq!(ripple.to, Recipients::Select(selector));
    Ok(())
}

#[test]
fn ripple_wave_keeps_its_id_and_takes_the_mechtrons_surface() -> Result<(), Error> {
    let host = Rc::new(TestHost::default());
    host.answer_ripples(|ripple| vec![ripple.echo(ripple.from.clone(), ReflectedCore::ok(()))]);
    let details = Rc::new(Details {
        stub: Stub {
            point: "localhost:me".parse()?,
            kind: Kind::Mechtron,
            status: Status::Ready,
        },
        properties: Properties::new(),
    });
    let wave = DirectedWave::Ping(cosmic_space::Ping::new(
        "localhost:x".parse::<Point>()?,
        "localhost:me".parse::<Point>()?,
        Method::ext("Go")?,
        (),
    ));
    let ctx = Ctx::new(wave, details, host.clone());
    let id = WaveId::from_bytes([7; 16]);
    let ripple = Ripple::new(
        "localhost:someone-else".parse::<Point>()?,
        "localhost:a".parse::<Point>()?,
        Method::ext("Go")?,
        (),
    )
    .with_id(id)
    .with_path("/jobs")
    .with_bounce_backs(BounceBacks::Single);
    let echoes = ctx.ripple_wave(ripple);
    assert_eq!(echoes.len(), 1);
    let sent = host.ripples();
    assert_eq!(sent[0].id, id, "a retry keeps its id");
    assert_eq!(sent[0].from.to_string(), "localhost:me@Core");
    assert_eq!(sent[0].core.path, "/jobs");
    assert_eq!(
        sent[0].to,
        Recipients::from("localhost:a".parse::<Point>()?)
    );
    Ok(())
}

#[test]
fn a_ripple_delivered_to_a_mechtron_is_answered_like_a_ping() -> Result<(), Error> {
    let mut rippler = TestMechtron::<Rippler>::new()?;
    let answer = rippler.ripple(DirectedCore::new(Method::ext("Kind")?));
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.as_text(), Some("Ripple"));
    assert_eq!(rippler.ping("Ext<Kind>", ()).body.as_text(), Some("Ping"));
    Ok(())
}
