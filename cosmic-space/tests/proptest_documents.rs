//! Property tests of the document grammars: bind (SPEC §7) and mechtron (SPEC §8) documents.
//!
//! 1. Round trip: random valid ASTs print and parse back equal.
//! 2. No panic: arbitrary strings and mutated valid documents never panic the parsers, and any
//!    document that does parse round-trips and can route waves.

#![allow(clippy::unwrap_used)]

use cosmic_space::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use semver::Version;

// ---------------------------------------------------------------------------------------------
// Strategies for valid ASTs.

fn version() -> impl Strategy<Value = Version> {
    (0u64..4, 0u64..30).prop_map(|(minor, patch)| Version::new(1, minor, patch))
}

fn method_kind() -> impl Strategy<Value = MethodKind> {
    select(vec![
        MethodKind::Hyp,
        MethodKind::Cmd,
        MethodKind::Http,
        MethodKind::Ext,
    ])
}

fn method_of(kind: MethodKind) -> BoxedStrategy<Method> {
    match kind.names() {
        Some(names) => select(names.to_vec())
            .prop_map(move |name| format!("{kind}<{name}>").parse::<Method>().unwrap())
            .boxed(),
        None => "[A-Z][A-Za-z0-9]{0,8}"
            .prop_map(|name| Method::ext(&name).unwrap())
            .boxed(),
    }
}

fn method() -> impl Strategy<Value = Method> {
    method_kind().prop_flat_map(method_of)
}

fn method_pattern() -> impl Strategy<Value = MethodPattern> {
    prop_oneof![
        Just(MethodPattern::Any),
        method_kind().prop_map(MethodPattern::Kind),
        method().prop_map(MethodPattern::Exact),
    ]
}

/// A pattern that overlaps `outer`, as a block line's must.
fn narrowing(outer: &MethodPattern) -> BoxedStrategy<MethodPattern> {
    match outer.clone() {
        MethodPattern::Any => method_pattern().boxed(),
        MethodPattern::Kind(kind) => prop_oneof![
            Just(MethodPattern::Any),
            Just(MethodPattern::Kind(kind)),
            method_of(kind).prop_map(MethodPattern::Exact),
        ]
        .boxed(),
        MethodPattern::Exact(method) => prop_oneof![
            Just(MethodPattern::Any),
            Just(MethodPattern::Kind(method.kind())),
            Just(MethodPattern::Exact(method)),
        ]
        .boxed(),
    }
}

/// A path regex of literal segments and captures; capture names get `tag` and an index so
/// they are unique within the regex.
fn path_regex(tag: &'static str) -> impl Strategy<Value = PathRegex> {
    let piece = prop_oneof![
        "[a-z0-9_-]{1,6}".prop_map(Piece::Literal),
        Just(Piece::Class("[0-9]+")),
        Just(Piece::Class("[A-Za-z0-9_.-]+")),
        Just(Piece::Class("(?-u:\\w)+")),
        select(vec!["path", "rest", "x", "dir"]).prop_map(Piece::Capture),
    ];
    vec(piece, 0..5).prop_map(move |pieces| {
        let mut source = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            source.push('/');
            match piece {
                Piece::Literal(text) => source.push_str(text),
                Piece::Class(class) => source.push_str(class),
                Piece::Capture(name) => {
                    source.push_str(&format!("(?P<{name}{tag}{i}>[A-Za-z0-9._~%/-]*)"))
                }
            }
        }
        if source.is_empty() {
            source.push('/');
        }
        PathRegex::new(&source).unwrap()
    })
}

#[derive(Debug, Clone)]
enum Piece {
    Literal(String),
    Class(&'static str),
    Capture(&'static str),
}

/// A point-var that uses only `vars` (maybe none of them).
fn point_var(vars: Vec<String>) -> BoxedStrategy<PointVar> {
    let plain = select(vec![
        "localhost",
        "localhost:app",
        "my-org.com:apps:my-app",
        "repo:site:1.0.0:/html/index.html",
        "localhost:base:/",
        "..:sibling",
        "..:..:other",
        ".:child",
        ".",
        "GLOBAL::registry",
        "other.org::app",
        "ROOT",
    ])
    .prop_map(|s| s.parse::<PointVar>().unwrap());
    if vars.is_empty() {
        return plain.boxed();
    }
    let templates = vec![
        "localhost:repo:site:1.0.0:/html/${V}",
        "localhost:${V}",
        "localhost:${V}:users",
        "${V}:app",
        "localhost:base:/${V}/index.html",
    ];
    let with_var = (select(templates), select(vars))
        .prop_map(|(t, v)| t.replace('V', &v).parse::<PointVar>().unwrap());
    prop_oneof![plain, with_var].boxed()
}

fn path_template(vars: Vec<String>) -> BoxedStrategy<PathTemplate> {
    let text = "[a-z0-9._~-]{0,5}";
    if vars.is_empty() {
        return text
            .prop_map(|t| format!("/{t}").parse::<PathTemplate>().unwrap())
            .boxed();
    }
    vec((text, option::of(select(vars))), 1..4)
        .prop_map(|parts| {
            let mut s = String::new();
            for (text, var) in parts {
                s.push('/');
                s.push_str(&text);
                if let Some(var) = var {
                    s.push_str(&format!("${{{var}}}"));
                }
            }
            s.parse::<PathTemplate>().unwrap()
        })
        .boxed()
}

fn stop(vars: Vec<String>) -> BoxedStrategy<Stop> {
    prop_oneof![
        Just(Stop::Core),
        point_var(vars.clone()).prop_map(Stop::Forward),
        (
            point_var(vars.clone()),
            method(),
            option::of(path_template(vars))
        )
            .prop_map(|(point, method, path)| Stop::Call {
                point,
                method,
                path
            }),
    ]
    .boxed()
}

fn filter() -> impl Strategy<Value = Option<Filter>> {
    option::of(select(SubstanceKind::NAMES.to_vec()).prop_map(|n| Filter(n.parse().unwrap())))
}

fn pipeline(vars: Vec<String>) -> impl Strategy<Value = Pipeline> {
    (filter(), stop(vars), filter()).prop_map(|(request, stop, reflection)| Pipeline {
        request,
        stop,
        reflection,
    })
}

fn names(path: &Option<PathRegex>) -> Vec<String> {
    path.iter()
        .flat_map(|p| p.capture_names().map(str::to_string))
        .collect()
}

fn block_line(outer: RouteSelector) -> impl Strategy<Value = BlockLine> {
    (narrowing(&outer.method), option::of(path_regex("l"))).prop_flat_map(move |(method, path)| {
        let mut vars = names(&outer.path);
        vars.extend(names(&path));
        let selector = RouteSelector { method, path };
        pipeline(vars).prop_map(move |pipeline| BlockLine {
            selector: selector.clone(),
            pipeline,
        })
    })
}

fn route() -> impl Strategy<Value = Route> {
    (method_pattern(), option::of(path_regex("r"))).prop_flat_map(|(method, path)| {
        let selector = RouteSelector { method, path };
        let body = prop_oneof![
            pipeline(names(&selector.path)).prop_map(RouteBody::Pipeline),
            vec(block_line(selector.clone()), 0..4).prop_map(RouteBody::Block),
        ];
        body.prop_map(move |body| Route {
            selector: selector.clone(),
            body,
        })
    })
}

fn bind() -> impl Strategy<Value = Bind> {
    (version(), vec(route(), 0..6)).prop_map(|(version, routes)| Bind { version, routes })
}

fn mechtron() -> impl Strategy<Value = MechtronConfig> {
    let wasm = prop_oneof![
        "[a-z0-9_-]{1,8}".prop_map(|f| format!("${{bundle}}:/wasm/{f}.wasm")
            .parse::<PointVar>()
            .unwrap()),
        Just("${bundle}:/a/b/c.wasm".parse::<PointVar>().unwrap()),
        Just(
            "repo:hello:1.0.0:/wasm/hello.wasm"
                .parse::<PointVar>()
                .unwrap()
        ),
        Just(".:/hello.wasm".parse::<PointVar>().unwrap()),
    ];
    let memory = prop_oneof![
        Limits::MIN_MEMORY..=Limits::MAX_MEMORY,
        (1u64..=65_536).prop_map(|pages| pages * Limits::PAGE_SIZE),
        (1u64..=4).prop_map(|g| g * 1_000_000_000),
    ];
    (
        version(),
        wasm,
        "[a-z][a-z0-9-]{0,12}",
        1u64..=u64::MAX,
        memory,
        proptest::sample::subsequence(
            vec![
                "localhost:chat:**<Channel>",
                "localhost:app:*",
                "localhost:app:users:scott",
                "**<Mechtron>",
            ],
            0..=4,
        ),
    )
        .prop_map(
            |(version, wasm, name, fuel, memory, subscribe)| MechtronConfig {
                version,
                wasm,
                name,
                limits: Limits::new(fuel, memory).unwrap(),
                subscribe: subscribe.iter().map(|s| s.parse().unwrap()).collect(),
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Mutations of valid documents.

const SPEC_BIND: &str = "\
# comments run to the end of the line
Bind(version=1.0.0) {
  Route<Ext<Hello>> -> (()) => &;
  Route<Http<Get>>/static/(?P<path>.*) -> localhost:repo:site:1.0.0:/html/${path} => &;
  Route<Http<*>>/app/(?P<rest>.*) -> localhost:my-app^Http<Get>/${rest} => &;
  Route -> {
     Cmd<Read> -> (()) => &;
     Ext<*> -[ Text ]-> (()) =[ Text ]=> &;
  }
}
";

/// The SPEC example with ASCII classes instead of `.*`, whose Unicode automaton takes most of a
/// millisecond to compile in a debug build: the bulk of the mutations use this one.
const ASCII_BIND: &str = "\
# comments run to the end of the line
Bind(version=1.0.0) {
  Route<Ext<Hello>> -> (()) => &;
  Route<Http<Get>>/static/(?P<path>[a-z/.]*) -> localhost:repo:site:1.0.0:/html/${path} => &;
  Route<Http<*>>/app/(?P<rest>[a-z/]*) -> localhost:my-app^Http<Get>/${rest} => &;
  Route -> {
     Cmd<Read> -> (()) => &;
     Ext<*> -[ Text ]-> (()) =[ Text ]=> &;
  }
}
";

const SPEC_MECHTRON: &str = "\
Mechtron(version=1.0.0) {
  Wasm {
    +bin=${bundle}:/wasm/hello.wasm;
    +name=hello;
  }
  Limits {
    +fuel=100000000;
    +memory=64MiB;
  }
}
";

/// Characters that matter to the grammars, plus a few that do not.
const ALPHABET: &[char] = &[
    '{',
    '}',
    '(',
    ')',
    '<',
    '>',
    '[',
    ']',
    '-',
    '=',
    '&',
    ';',
    '$',
    '/',
    ':',
    '#',
    '^',
    '*',
    '.',
    '+',
    '?',
    '|',
    '\\',
    ' ',
    '\n',
    '\t',
    'a',
    'Z',
    '0',
    '9',
    '_',
    'é',
    '\u{0}',
    '\u{10FFFF}',
];

/// Strings made of the grammars' own words and symbols, which get further into a parser than
/// arbitrary text does.
fn token_soup(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => select(words).prop_map(str::to_string),
        1 => select(ALPHABET).prop_map(String::from),
    ];
    vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

const BIND_WORDS: &[&str] = &[
    "Bind(version=1.0.0) {",
    "Bind",
    "(version=",
    "1.0.0",
    ")",
    " {",
    "}",
    "\n  Route",
    "Route",
    "<Http<Get>>",
    "<Ext<Hello>>",
    "<*>",
    "Cmd<Read>",
    "Http<*>",
    "Ext<*>",
    "*",
    "/static/",
    "(?P<path>[a-z]*)",
    "(?P<rest>.*)",
    "(",
    "[",
    " -> ",
    "->",
    " => ",
    "=>",
    "-[ Text ]->",
    "=[ Json ]=>",
    "(())",
    " &",
    "&",
    ";",
    "localhost",
    ":repo",
    ":1.0.0",
    ":/html/",
    "${path}",
    "${rest}",
    "${x}",
    "^Http<Get>",
    "^Ext<Hi>",
    "/${rest}",
    "..",
    ".:",
    "GLOBAL::",
    "# note\n",
    " ",
    "\n",
];

const MECHTRON_WORDS: &[&str] = &[
    "Mechtron(version=1.0.0) {",
    "Mechtron",
    "(version=",
    "1.0.0",
    "2.0.0",
    ")",
    " {",
    "}",
    "Wasm",
    "Limits",
    "Env",
    " { ",
    "+bin=",
    "+name=",
    "+fuel=",
    "+memory=",
    "+x=",
    "${bundle}",
    ":/wasm/hello.wasm",
    "repo:a:1.0.0",
    "hello",
    "Hello",
    "100",
    "0",
    "18446744073709551616",
    "64",
    "MiB",
    "KiB",
    "GiB",
    "MB",
    "kb",
    ";",
    "=",
    "+",
    "# note\n",
    " ",
    "\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), select(ALPHABET)).prop_map(|(at, c)| Edit::Insert(at, c)),
        (any::<usize>(), 1usize..8).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1usize..12).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ];
    vec(edit, 1..4)
}

/// Applies `edits` to `text`, on characters so that every result is valid UTF-8.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len();
        match *edit {
            Edit::Insert(at, c) => chars.insert(at % (len + 1), c),
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                chars.drain(at..(at + n).min(len));
            }
            Edit::Duplicate(at, n) if len > 0 => {
                let at = at % len;
                let slice: Vec<char> = chars[at..(at + n).min(len)].to_vec();
                chars.splice(at..at, slice);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// What every parsed bind must support: a canonical form that parses back equal, and routing.
fn check_parsed_bind(bind: &Bind) {
    let text = bind.to_string();
    let back: Bind = text
        .parse()
        .unwrap_or_else(|e| panic!("canonical form does not parse:\n{text}\n{e}"));
    assert_eq!(&back, bind, "{text}");
    for (method, path) in [
        ("Http<Get>", "/static/a/b.css"),
        ("Http<Post>", "/app/x"),
        ("Cmd<Read>", "/"),
        ("Ext<Hello>", ""),
        ("Hyp<Assign>", "/é/\u{0}"),
    ] {
        let selection = bind.select(&method.parse().unwrap(), path);
        if let Selection::Route { pipeline, vars } = selection {
            let env = vars.with_working("localhost:site".parse().unwrap());
            let _ = pipeline.stop.resolve(&env);
        }
    }
}

fn check_parsed_mechtron(config: &MechtronConfig) {
    let text = config.to_string();
    let back: MechtronConfig = text
        .parse()
        .unwrap_or_else(|e| panic!("canonical form does not parse:\n{text}\n{e}"));
    assert_eq!(&back, config, "{text}");
    let _ = config.wasm_point(&"repo:hello:1.0.0".parse().unwrap());
}

fn render_error(error: ParseError) {
    // Rendering must not panic either, wherever the span points.
    let _ = error.to_string();
    let _ = error.line_col();
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn generated_binds_round_trip(bind in bind()) {
        let text = bind.to_string();
        let back: Bind = text.parse().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(back, bind);
    }

    #[test]
    fn generated_mechtron_documents_round_trip(config in mechtron()) {
        let text = config.to_string();
        let back: MechtronConfig =
            text.parse().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(back, config);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_bind_parser(text in any::<String>()) {
        match text.parse::<Bind>() {
            Ok(bind) => check_parsed_bind(&bind),
            Err(e) => render_error(e),
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_mechtron_parser(text in any::<String>()) {
        match text.parse::<MechtronConfig>() {
            Ok(config) => check_parsed_mechtron(&config),
            Err(e) => render_error(e),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn bind_token_soup_never_panics(text in token_soup(BIND_WORDS)) {
        match text.parse::<Bind>() {
            Ok(bind) => check_parsed_bind(&bind),
            Err(e) => render_error(e),
        }
    }

    #[test]
    fn mechtron_token_soup_never_panics(text in token_soup(MECHTRON_WORDS)) {
        match text.parse::<MechtronConfig>() {
            Ok(config) => check_parsed_mechtron(&config),
            Err(e) => render_error(e),
        }
    }

    #[test]
    fn mutated_binds_never_panic(edits in edits()) {
        match mutate(ASCII_BIND, &edits).parse::<Bind>() {
            Ok(bind) => check_parsed_bind(&bind),
            Err(e) => render_error(e),
        }
    }

    #[test]
    fn mutated_spec_mechtron_documents_never_panic(edits in edits()) {
        match mutate(SPEC_MECHTRON, &edits).parse::<MechtronConfig>() {
            Ok(config) => check_parsed_mechtron(&config),
            Err(e) => render_error(e),
        }
    }
}

proptest! {
    // Generated binds hold several regexes each, the slowest part of parsing in a debug build.
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn mutated_generated_binds_never_panic(bind in bind(), edits in edits()) {
        match mutate(&bind.to_string(), &edits).parse::<Bind>() {
            Ok(bind) => check_parsed_bind(&bind),
            Err(e) => render_error(e),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_spec_binds_never_panic(edits in edits()) {
        match mutate(SPEC_BIND, &edits).parse::<Bind>() {
            Ok(bind) => check_parsed_bind(&bind),
            Err(e) => render_error(e),
        }
    }

    #[test]
    fn mutated_generated_mechtron_documents_never_panic(config in mechtron(), edits in edits()) {
        match mutate(&config.to_string(), &edits).parse::<MechtronConfig>() {
            Ok(config) => check_parsed_mechtron(&config),
            Err(e) => render_error(e),
        }
    }

    #[test]
    fn arbitrary_paths_never_panic_selection(path in any::<String>(), method in method()) {
        static SPEC: std::sync::OnceLock<Bind> = std::sync::OnceLock::new();
        let bind = SPEC.get_or_init(|| SPEC_BIND.parse().unwrap());
        if let Selection::Route { pipeline, vars } = bind.select(&method, &path) {
            let _ = pipeline.stop.resolve(&vars);
        }
    }
}
