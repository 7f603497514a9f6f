//! Property tests for the point grammars: generated points, point-vars, surfaces and kinds
//! print and parse back to themselves, and no input string panics their parsers.

#![allow(clippy::unwrap_used)]

use cosmic_space::*;
use proptest::prelude::*;
use semver::{BuildMetadata, Prerelease, Version};

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join("."))
}

fn skewer() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn fs_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,10}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn version() -> impl Strategy<Value = Version> {
    (
        0u64..100,
        0u64..100,
        0u64..100,
        prop::option::of("[a-z][a-z0-9]{0,4}(\\.(0|[1-9][0-9]{0,2}))?"),
        prop::option::of("[a-z0-9]{1,5}"),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut v = Version::new(major, minor, patch);
            if let Some(pre) = pre {
                v.pre = Prerelease::new(&pre).unwrap();
            }
            if let Some(build) = build {
                v.build = BuildMetadata::new(&build).unwrap();
            }
            v
        })
}

fn route() -> impl Strategy<Value = RouteSeg> {
    prop_oneof![
        6 => Just(RouteSeg::This),
        1 => Just(RouteSeg::Global),
        1 => Just(RouteSeg::Local),
        1 => Just(RouteSeg::Remote),
        1 => (skewer(), skewer(), any::<u16>())
            .prop_map(|(c, n, i)| RouteSeg::Star(StarKey::new(&c, &n, i).unwrap())),
        1 => skewer().prop_map(RouteSeg::Tag),
        1 => domain().prop_map(RouteSeg::Domain),
    ]
}

/// A valid point: route, space, bases, an optional version, an optional file system.
fn point() -> impl Strategy<Value = Point> {
    (
        route(),
        prop::option::weighted(0.95, domain()),
        prop::collection::vec(skewer(), 0..4),
        prop::option::of(version()),
        prop::option::of((
            prop::collection::vec(fs_name(), 0..3),
            prop::option::of(fs_name()),
        )),
    )
        .prop_map(|(route, space, bases, version, fs)| {
            let Some(space) = space else {
                return Point::root().with_route(route);
            };
            let mut point = Point::space(&space).unwrap().with_route(route);
            for base in bases {
                point = point.push_base(&base).unwrap();
            }
            if let Some(version) = version {
                point = point.push(PointSeg::Version(version)).unwrap();
            }
            if let Some((dirs, file)) = fs {
                let mut path: String = dirs.iter().map(|d| format!("{d}/")).collect();
                path.push_str(&file.unwrap_or_default());
                point = point.push_path(&path).unwrap();
            }
            point
        })
}

fn var_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
}

/// A point-var built from a valid point by swapping some pieces for variables or a
/// relative beginning.
fn point_var() -> impl Strategy<Value = PointVar> {
    (
        point(),
        0u8..4,
        1usize..4,
        var_name(),
        prop::option::of(var_name()),
    )
        .prop_map(|(point, lead, ups, name, tail_var)| {
            let tail: String = point
                .to_string()
                .split_once(':')
                .filter(|_| *point.route() == RouteSeg::This)
                .map(|(_, rest)| format!(":{rest}"))
                .unwrap_or_default();
            let mut text = match lead {
                0 => point.to_string(),
                1 => format!(".{tail}"),
                2 => format!("{}{tail}", vec![".."; ups].join(":")),
                _ => format!("${{{name}}}{tail}"),
            };
            if let Some(var) = tail_var
                && !text.contains(":/")
                && !point.is_root()
                && !matches!(point.last_segment(), Some(PointSeg::Version(_)))
            {
                text.push_str(&format!(":${{{var}}}"));
            }
            text.parse::<PointVar>()
                .unwrap_or_else(|e| panic!("generated {text:?}: {e}"))
        })
}

fn surface() -> impl Strategy<Value = Surface> {
    (
        point(),
        prop::sample::select(Layer::ALL.to_vec()),
        prop::option::of(prop_oneof![
            Just(Topic::Cli),
            Just(Topic::Any),
            Just(Topic::Not),
            any::<[u8; 16]>().prop_map(|b| Topic::Uuid(uuid::Uuid::from_bytes(b))),
            prop::collection::vec("[A-Za-z0-9_-]{1,6}", 1..4).prop_map(Topic::Path),
        ]),
    )
        .prop_map(|(point, layer, topic)| Surface {
            point,
            layer,
            topic,
        })
}

fn specific() -> impl Strategy<Value = Specific> {
    (domain(), domain(), skewer(), skewer(), version()).prop_map(
        |(provider, vendor, product, variant, version)| Specific {
            provider,
            vendor,
            product,
            variant,
            version,
        },
    )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        prop::sample::select(vec![
            Kind::Root,
            Kind::Space,
            Kind::Base,
            Kind::App,
            Kind::Mechtron,
            Kind::Repo,
            Kind::BundleSeries,
            Kind::Bundle,
            Kind::UserBase(None),
            Kind::User,
            Kind::FileStore,
            Kind::Control,
            Kind::Host,
            Kind::Guest,
            Kind::Driver,
            Kind::Global,
            Kind::Portal,
            Kind::Secret,
            Kind::Database(DatabaseSubKind::KeyValue),
            Kind::Artifact(ArtifactSubKind::Raw),
            Kind::Artifact(ArtifactSubKind::Bind),
            Kind::Artifact(ArtifactSubKind::Wasm),
            Kind::Artifact(ArtifactSubKind::Config),
            Kind::Artifact(ArtifactSubKind::Dir),
            Kind::File(FileSubKind::File),
            Kind::File(FileSubKind::Dir),
            Kind::Star(StarSubKind::Central),
            Kind::Star(StarSubKind::Machine),
            Kind::Star(StarSubKind::Nexus),
            Kind::Star(StarSubKind::Fold),
        ]),
        specific().prop_map(|s| Kind::Database(DatabaseSubKind::Relational(s))),
        specific().prop_map(|s| Kind::UserBase(Some(UserBaseSubKind::OAuth(s)))),
    ]
}

/// Strings close to valid inputs: a valid text with random edits.
fn mutated(valid: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        valid,
        prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..4),
    )
        .prop_map(|(text, edits)| {
            let mut chars: Vec<char> = text.chars().collect();
            for (at, ch, op) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 => chars.insert(i, ch),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = ch,
                    _ => chars.push(ch),
                }
            }
            chars.into_iter().collect()
        })
}

/// Characters the grammars care about, so random strings get deep into the parsers.
fn grammar_soup() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:./<>@+*()\\[\\]${}_ ^&!=,;#-]{0,40}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn points_round_trip(p in point()) {
        let text = p.to_string();
        prop_assert_eq!(text.parse::<Point>().unwrap(), p);
    }

    #[test]
    fn point_vars_round_trip(v in point_var()) {
        let text = v.to_string();
        prop_assert_eq!(text.parse::<PointVar>().unwrap(), v);
    }

    #[test]
    fn plain_point_vars_resolve_to_their_point(p in point()) {
        let var: PointVar = p.to_string().parse().unwrap();
        prop_assert_eq!(var.resolve(&Env::new()).unwrap(), p);
    }

    #[test]
    fn surfaces_round_trip(s in surface()) {
        prop_assert_eq!(s.to_string().parse::<Surface>().unwrap(), s);
    }

    #[test]
    fn kinds_round_trip(k in kind()) {
        prop_assert_eq!(k.to_string().parse::<Kind>().unwrap(), k);
    }

    #[test]
    fn every_parent_but_root_is_a_prefix(p in point()) {
        if let Some(parent) = p.parent() {
            prop_assert!(p.is_within(&parent));
            prop_assert_eq!(parent.segments().len() + 1, p.segments().len());
            // Parents are valid points too.
            prop_assert_eq!(parent.to_string().parse::<Point>().unwrap(), parent);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6_000, ..ProptestConfig::default() })]

    #[test]
    fn no_string_panics_the_point_parsers(s in any::<String>()) {
        let _ = s.parse::<Point>();
        let _ = s.parse::<PointVar>();
        let _ = s.parse::<Surface>();
        let _ = s.parse::<Kind>();
    }

    #[test]
    fn no_grammar_soup_panics_the_point_parsers(s in grammar_soup()) {
        let _ = s.parse::<Point>();
        let _ = s.parse::<PointVar>();
        let _ = s.parse::<Surface>();
        let _ = s.parse::<Kind>();
        let _ = s.parse::<Method>();
        let _ = s.parse::<MethodPattern>();
    }

    #[test]
    fn no_mutated_point_panics(s in mutated(point().prop_map(|p| p.to_string()))) {
        if let Err(e) = s.parse::<Point>() {
            // Rendering the error must not panic either.
            let _ = e.to_string();
        }
        let _ = s.parse::<PointVar>().map(|v| v.resolve(&Env::new()));
    }

    #[test]
    fn no_mutated_surface_or_kind_panics(
        s in mutated(surface().prop_map(|s| s.to_string())),
        k in mutated(kind().prop_map(|k| k.to_string())),
    ) {
        let _ = s.parse::<Surface>().map_err(|e| e.to_string());
        let _ = k.parse::<Kind>().map_err(|e| e.to_string());
    }
}
