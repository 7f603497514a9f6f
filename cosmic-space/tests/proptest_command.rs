//! Property tests for the command language (SPEC §10, §16): random valid commands and scripts
//! print and parse back to themselves; no input, arbitrary or nearly valid, panics the parser.

#![allow(clippy::unwrap_used)]

use cosmic_space::{
    Command, Create, CreateStrategy, GrantKind, Kind, PointTemplate, PointVar, PropertyChange,
    PropertyChanges, Script, Selector,
};
use proptest::prelude::*;

// ---- generators for the pieces (built as text, parsed by the crate's own parsers) ----

/// A string strategy from a regex, compiled once (a bare `&str` strategy recompiles per case).
fn re(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    proptest::string::string_regex(pattern).unwrap()
}

fn space() -> impl Strategy<Value = String> {
    re("[a-z][a-z0-9]{0,5}(\\.[a-z]{2,3})?")
}

fn base() -> impl Strategy<Value = String> {
    re("[a-z][a-z0-9-]{0,6}")
}

/// A base a selector can name too (selectors read segments as domain labels, which may not
/// end with `-`).
fn selector_base() -> impl Strategy<Value = String> {
    re("[a-z]([a-z0-9-]{0,5}[a-z0-9])?")
}

fn var() -> impl Strategy<Value = String> {
    re("[A-Za-z_][A-Za-z0-9_]{0,4}").prop_map(|name| format!("${{{name}}}"))
}

fn version() -> impl Strategy<Value = String> {
    (0u32..5, 0u32..20, 0u32..20).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"))
}

/// A file-system name that is never `.` or `..`.
fn fs_name() -> impl Strategy<Value = String> {
    re("[A-Za-z0-9_][A-Za-z0-9._-]{0,6}")
}

fn route() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just("GLOBAL::".to_string()),
        1 => Just("LOCAL::".to_string()),
        1 => Just("<<STAR::central:nexus[0]>>::".to_string()),
        1 => re("[a-z]{1,4}").prop_map(|t| format!("[{t}]::")),
        1 => re("[a-z]{1,4}\\.com").prop_map(|d| format!("{d}::")),
    ]
}

/// The beginning of a point-var: a routed space, `.`, `..` (repeated) or `${var}`.
fn lead() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => (route(), space()).prop_map(|(r, s)| format!("{r}{s}")),
        1 => Just(".".to_string()),
        1 => (1usize..4).prop_map(|n| vec![".."; n].join(":")),
        1 => var(),
    ]
}

/// Segments after the lead that are bases or variables (no version, no file system).
fn middle() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![3 => base(), 1 => var()], 0..4)
        .prop_map(|segs| segs.iter().map(|s| format!(":{s}")).collect())
}

fn fs_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![3 => fs_name(), 1 => var()], 0..3),
        prop::option::of(prop_oneof![3 => fs_name(), 1 => var()]),
    )
        .prop_map(|(dirs, file)| {
            let mut path = ":/".to_string();
            for dir in dirs {
                path.push_str(&dir);
                path.push('/');
            }
            if let Some(file) = file {
                path.push_str(&file);
            }
            path
        })
}

fn point_var() -> impl Strategy<Value = PointVar> {
    (
        lead(),
        middle(),
        prop::option::of(version()),
        prop::option::of(fs_path()),
    )
        .prop_map(|(lead, middle, version, fs)| {
            let mut text = lead + &middle;
            if let Some(version) = version {
                text.push(':');
                text.push_str(&version);
            }
            if let Some(fs) = fs {
                text.push_str(&fs);
            }
            text.parse::<PointVar>()
                .unwrap_or_else(|e| panic!("generator made a bad point {text:?}:\n{e}"))
        })
}

/// A parent for a `%` segment: no version and no file system at the end.
fn parent_var() -> impl Strategy<Value = PointVar> {
    (lead(), middle()).prop_map(|(lead, middle)| {
        let text = lead + &middle;
        text.parse::<PointVar>()
            .unwrap_or_else(|e| panic!("generator made a bad parent {text:?}:\n{e}"))
    })
}

fn template() -> impl Strategy<Value = PointTemplate> {
    prop_oneof![
        3 => point_var().prop_map(PointTemplate::Exact),
        1 => (parent_var(), re("[a-z][a-z0-9-]{0,5}"), re("[a-z0-9-]{0,4}")).prop_map(
            |(parent, prefix, suffix)| PointTemplate::Sequence { parent, prefix, suffix }
        ),
    ]
}

const KINDS: &[&str] = &[
    "Root",
    "Space",
    "Base",
    "App",
    "Mechtron",
    "Repo",
    "BundleSeries",
    "Bundle",
    "Artifact<Raw>",
    "Artifact<Bind>",
    "Artifact<Wasm>",
    "Artifact<Config>",
    "Artifact<Dir>",
    "UserBase",
    "UserBase<OAuth<keycloak.org:keycloak.org:keycloak:core:26.0.0>>",
    "User",
    "FileStore",
    "File<File>",
    "File<Dir>",
    "Database<KeyValue>",
    "Database<Relational<starlane.io:postgres.org:postgres:gis:15.0.0>>",
    "Control",
    "Star<Central>",
    "Driver",
    "Secret",
];

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(KINDS).prop_map(|k| k.parse::<Kind>().unwrap())
}

fn hop() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("*".to_string()),
            Just("**".to_string()),
            selector_base(),
            version(),
            Just("(^1.0.0)".to_string()),
            Just("(>=2, <3)".to_string()),
        ],
        prop::sample::select(&["", "<Mechtron>", "<Artifact<Wasm>>", "<*<Wasm>>", "<User>"][..]),
        any::<bool>(),
    )
        .prop_map(|(seg, kind, inclusive)| {
            format!("{seg}{kind}{}", if inclusive { "+" } else { "" })
        })
}

fn selector() -> impl Strategy<Value = Selector> {
    (
        prop_oneof![space(), Just("*".to_string()), Just("**".to_string())],
        prop::collection::vec(hop(), 0..4),
        prop::option::of(prop::collection::vec(
            prop_oneof![fs_name(), Just("*".to_string()), Just("**".to_string())],
            0..3,
        )),
    )
        .prop_map(|(first, hops, fs)| {
            let mut text = first;
            for hop in hops {
                text.push(':');
                text.push_str(&hop);
            }
            if let Some(fs) = fs {
                text.push_str(":/");
                text.push_str(&fs.join("/"));
            }
            text.parse::<Selector>()
                .unwrap_or_else(|e| panic!("generator made a bad selector {text:?}:\n{e}"))
        })
}

fn grant_kind() -> impl Strategy<Value = GrantKind> {
    prop_oneof![
        Just("Super".to_string()),
        re("[a-z][a-z-]{0,4}(:[a-z][a-z-]{0,4}){0,2}"),
        (re("[+&]"), re("[cC][sS][dD]"), re("[rR][wW][xX]"))
            .prop_map(|(s, a, b)| format!("{s}{a}-{b}")),
    ]
    .prop_map(|text| text.parse::<GrantKind>().unwrap())
}

fn property_name() -> impl Strategy<Value = String> {
    re("[a-z][a-z0-9-]{0,8}")
}

/// Any text at all, weighted towards the characters that need quoting.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => re("[a-z0-9:/. ]{1,12}"),
        2 => re("[ ,}{\"\\\\\n\r\t#;a-z]{0,10}"),
        1 => any::<String>(),
    ]
}

fn property_changes() -> impl Strategy<Value = PropertyChanges> {
    prop::collection::vec(
        prop_oneof![
            (property_name(), value(), any::<bool>())
                .prop_map(|(name, value, lock)| PropertyChange::Set { name, value, lock }),
            property_name().prop_map(PropertyChange::remove),
        ],
        0..5,
    )
    .prop_map(|changes| changes.into_iter().collect())
}

fn strategy() -> impl Strategy<Value = CreateStrategy> {
    prop::sample::select(
        &[
            CreateStrategy::Commit,
            CreateStrategy::Ensure,
            CreateStrategy::Override,
        ][..],
    )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (strategy(), template(), kind(), property_changes()).prop_map(
            |(strategy, template, kind, properties)| Command::Create(Create {
                strategy,
                template,
                kind,
                properties,
            })
        ),
        1 => (
            prop_oneof![3 => re("[a-z0-9./_-]{1,12}"), 1 => any::<String>().prop_filter("not empty", |s| !s.is_empty())],
            point_var()
        )
            .prop_map(|(file, point)| Command::Publish { file, point }),
        1 => selector().prop_map(|selector| Command::Select { selector }),
        2 => (point_var(), property_changes().prop_filter("set changes something", |p| !p.is_empty()))
            .prop_map(|(point, properties)| Command::Set { point, properties }),
        1 => (point_var(), prop::collection::btree_set(property_name(), 0..4)).prop_map(
            |(point, names)| Command::Get {
                point,
                names: names.into_iter().collect(),
            }
        ),
        1 => point_var().prop_map(|point| Command::Read { point }),
        1 => (point_var(), any::<bool>()).prop_map(|(point, force)| Command::Delete { point, force }),
        1 => (grant_kind(), selector(), selector())
            .prop_map(|(kind, on, to)| Command::Grant { kind, on, to }),
        1 => any::<u64>().prop_map(|id| Command::Revoke { id }),
        1 => point_var().prop_map(|point| Command::Access { point }),
        1 => (selector(), point_var()).prop_map(|(on, owner)| Command::Chown { on, owner }),
    ]
}

// ---- round trips ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn commands_print_and_parse_back(command in command()) {
        let text = command.to_string();
        let parsed = text.parse::<Command>();
        prop_assert_eq!(parsed.as_ref(), Ok(&command), "printed as {:?}", text);
        // With the `;` a script puts after it, too.
        prop_assert_eq!(format!("{text};").parse::<Command>(), Ok(command));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn scripts_print_and_parse_back(commands in prop::collection::vec(command(), 0..8)) {
        let script: Script = commands.iter().cloned().collect();
        let text = script.to_string();
        let parsed = text.parse::<Script>().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(&parsed, &script);
        // Each command's span is exactly its canonical text.
        for (spanned, command) in parsed.commands().iter().zip(&commands) {
            prop_assert_eq!(&text[spanned.span.start..spanned.span.end], command.to_string());
        }
    }
}

// ---- no panics (25,000 cases in all: 8,000 + 8,000 + 6,000 + 2,000 + 1,000) ----

/// The characters commands are made of, so random strings get deep into the parsers.
const ALPHABET: &str = "[a-zA-Z0-9<>{}:;%+@!=,\"\\\\^\\[\\]\\-> .*#\n$()_/&?é]{0,60}";

fn check(text: &str) {
    if let Err(err) = text.parse::<Command>() {
        let _ = err.to_string();
        let _ = err.line_col();
    }
    if let Err(err) = text.parse::<Script>() {
        let _ = err.to_string();
    }
    let _ = text.parse::<PointTemplate>();
    let _ = text.parse::<PropertyChanges>();
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (
                any::<usize>(),
                prop::sample::select(
                    "<>{}:;%+@!=,\"\\^[]-> .*#\n$()_/&?éXa1"
                        .chars()
                        .collect::<Vec<_>>()
                )
            )
                .prop_map(|(at, ch)| Edit::Insert(at, ch)),
            (any::<usize>(), 1usize..4).prop_map(|(at, n)| Edit::Delete(at, n)),
            (any::<usize>(), 1usize..8).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        ],
        1..4,
    )
}

/// Applies `edits` at character positions, so the result is always valid UTF-8.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len();
        match *edit {
            Edit::Insert(at, ch) => chars.insert(at % (len + 1), ch),
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                chars.drain(at..(at + n).min(len));
            }
            Edit::Duplicate(at, n) if len > 0 => {
                let at = at % len;
                let piece: Vec<char> = chars[at..(at + n).min(len)].to_vec();
                chars.splice(at..at, piece);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn command_shaped_strings_never_panic(text in re(ALPHABET)) {
        check(&text);
        check(&format!("create {text}"));
        check(&format!("set localhost{{ +a={text}"));
    }
}

/// Valid commands covering every form, to mutate cheaply.
const CORPUS: &[&str] = &[
    "create localhost<Space>",
    "create? localhost:repo<Repo>",
    "create! localhost:app<App>{ +config=localhost:repo:hello:1.0.0:/config/app.mechtron, +bind=x }",
    "create localhost:app:worker-%<Mechtron>{ +@locked=\"a, b\", !old }",
    "create ..:${name}:job%-run<Mechtron>",
    "create localhost:db<Database<Relational<starlane.io:postgres.org:postgres:gis:15.0.0>>>",
    "create <<STAR::central:nexus[0]>>::star:w-%<Base>",
    "publish ^[ bundle.zip ]-> localhost:repo:hello:1.0.0",
    "publish ^[ \"a]b.zip\" ]-> ${repo}:1.0.0",
    "select localhost:repo:site:(>=2, <3):/html/*",
    "set localhost{ +bind=localhost:repo:site:1.0.0:/bind/localhost.bind, +@locked=x, !old }",
    "get localhost:app{ config, bind }",
    "read ${bundle}:/html/${page}",
    "delete! localhost:app",
    "grant +cSd-RwX on localhost:app:** to localhost:users:**<User>",
    "grant property:email:read on localhost+:** to localhost:users:admin",
    "revoke 42",
    "access .",
    "chown localhost:app:** to ..:users:${user}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 6_000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(text in prop::sample::select(CORPUS), edits in edits()) {
        check(&mutate(text, &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_commands_never_panic(command in command(), edits in edits()) {
        check(&mutate(&command.to_string(), &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scripts_never_panic(commands in prop::collection::vec(command(), 1..5), edits in edits()) {
        let script: Script = commands.into_iter().collect();
        check(&mutate(&format!("# a script\n{script}"), &edits));
    }
}

#[test]
fn the_corpus_is_valid() {
    for text in CORPUS {
        assert!(text.parse::<Command>().is_ok(), "{text}");
    }
}
