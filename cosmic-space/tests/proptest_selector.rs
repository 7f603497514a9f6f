//! Property tests for selectors, kind selectors, grants and permissions: printing then parsing
//! gives back the same value, no input panics a parser, and every point is matched by the
//! selector its own text spells.

#![allow(clippy::unwrap_used)]

use cosmic_space::{
    BaseKind, GrantKind, Hop, KindSelector, MaskKind, Pattern, Permissions, PermissionsMask, Point,
    Privilege, SegmentPattern, Selector, SpecificSelector, VersionPattern,
};
use proptest::prelude::*;
use semver::{Version, VersionReq};

/// `[a-z][a-z0-9-]*` (what a base segment may be, trailing `-` included).
fn skewer() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,6}"
}

/// A domain label: `[a-z0-9][a-z0-9-]*` without a trailing `-`.
fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,4}[a-z0-9])?"
}

fn domain() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..3).prop_map(|labels| labels.join("."))
}

fn version() -> impl Strategy<Value = Version> {
    (
        0u64..20,
        0u64..20,
        0u64..20,
        prop::option::of("[a-z][a-z0-9]{0,3}"),
        prop::option::of("[a-z0-9]{1,4}"),
    )
        .prop_map(|(major, minor, patch, pre, build)| {
            let mut text = format!("{major}.{minor}.{patch}");
            if let Some(pre) = pre {
                text.push('-');
                text.push_str(&pre);
            }
            if let Some(build) = build {
                text.push('+');
                text.push_str(&build);
            }
            Version::parse(&text).unwrap()
        })
}

fn version_req() -> impl Strategy<Value = VersionReq> {
    let comparator = (
        prop::sample::select(vec!["", "=", ">", ">=", "<", "<=", "~", "^"]),
        0u64..10,
        prop::option::of((0u64..10, prop::option::of(0u64..10))),
    )
        .prop_map(|(op, major, rest)| match rest {
            None => format!("{op}{major}"),
            Some((minor, None)) => format!("{op}{major}.{minor}"),
            Some((minor, Some(patch))) => format!("{op}{major}.{minor}.{patch}"),
        });
    prop_oneof![
        Just("*".to_string()),
        prop::collection::vec(comparator, 1..3).prop_map(|c| c.join(", ")),
    ]
    .prop_filter_map("a valid requirement", |text| VersionReq::parse(&text).ok())
}

fn version_pattern() -> impl Strategy<Value = VersionPattern> {
    prop_oneof![
        Just(VersionPattern::Any),
        version().prop_map(VersionPattern::Exact),
        version_req().prop_map(VersionPattern::Req),
    ]
}

fn word_pattern() -> impl Strategy<Value = Pattern<String>> {
    prop_oneof![Just(Pattern::Any), domain().prop_map(Pattern::Exact)]
}

fn specific_selector() -> impl Strategy<Value = SpecificSelector> {
    (
        word_pattern(),
        word_pattern(),
        word_pattern(),
        word_pattern(),
        version_pattern(),
    )
        .prop_map(
            |(provider, vendor, product, variant, version)| SpecificSelector {
                provider,
                vendor,
                product,
                variant,
                version,
            },
        )
}

/// Every sub-kind name any base accepts (what `*<Sub>` may name).
fn all_sub_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = BaseKind::ALL
        .iter()
        .flat_map(|b| b.sub_kind_names().iter().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn kind_selector() -> impl Strategy<Value = KindSelector> {
    let base = prop_oneof![
        1 => Just(Pattern::Any),
        4 => prop::sample::select(BaseKind::ALL.to_vec()).prop_map(Pattern::Exact),
    ];
    (base, any::<u8>(), any::<bool>(), specific_selector()).prop_map(
        |(base, pick, with_specific, specific)| {
            let names: Vec<&'static str> = match &base {
                Pattern::Any => all_sub_names(),
                Pattern::Exact(b) => b.sub_kind_names().to_vec(),
            };
            // 0: no sub-kind, 1: `*`, otherwise one of the names (if any).
            let choice = usize::from(pick) % (names.len() + 2);
            let sub = match choice {
                0 => None,
                1 => Some(Pattern::Any),
                n => Some(Pattern::Exact(names[n - 2].to_string())),
            };
            let specific = if sub.is_some() && with_specific {
                Some(specific)
            } else {
                None
            };
            KindSelector {
                base,
                sub,
                specific,
            }
        },
    )
}

fn hop_kind() -> impl Strategy<Value = KindSelector> {
    prop_oneof![3 => Just(KindSelector::any()), 1 => kind_selector()]
}

fn hop(segment: impl Strategy<Value = SegmentPattern>) -> impl Strategy<Value = Hop> {
    (segment, hop_kind(), any::<bool>()).prop_map(|(segment, kind, inclusive)| Hop {
        segment,
        kind,
        inclusive,
    })
}

fn wildcard() -> impl Strategy<Value = SegmentPattern> {
    prop_oneof![Just(SegmentPattern::Any), Just(SegmentPattern::Recursive)]
}

fn first_hop() -> impl Strategy<Value = Hop> {
    hop(prop_oneof![
        wildcard(),
        domain().prop_map(SegmentPattern::Exact),
        version_req().prop_map(SegmentPattern::VersionReq),
    ])
}

fn later_hop() -> impl Strategy<Value = Hop> {
    hop(prop_oneof![
        wildcard(),
        skewer().prop_map(SegmentPattern::Exact),
        domain().prop_map(SegmentPattern::Exact),
        version().prop_map(SegmentPattern::Version),
        version_req().prop_map(SegmentPattern::VersionReq),
    ])
}

fn fs_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,8}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn fs_hop() -> impl Strategy<Value = Hop> {
    hop(prop_oneof![
        wildcard(),
        fs_name().prop_map(SegmentPattern::Exact),
        version_req().prop_map(SegmentPattern::VersionReq),
    ])
}

fn selector() -> impl Strategy<Value = Selector> {
    (
        first_hop(),
        prop::collection::vec(later_hop(), 0..5),
        prop::option::of(prop::collection::vec(fs_hop(), 0..4)),
    )
        .prop_map(|(first, later, fs)| {
            let mut hops = vec![first];
            hops.extend(later);
            Selector { hops, fs }
        })
}

fn grant_kind() -> impl Strategy<Value = GrantKind> {
    prop_oneof![
        Just(GrantKind::Super),
        prop::collection::vec(skewer(), 1..4)
            .prop_map(|words| GrantKind::Privilege(words.join(":").parse::<Privilege>().unwrap())),
        (any::<bool>(), permissions()).prop_map(|(or, permissions)| {
            GrantKind::Mask(PermissionsMask {
                kind: if or { MaskKind::Or } else { MaskKind::And },
                permissions,
            })
        }),
    ]
}

fn permissions() -> impl Strategy<Value = Permissions> {
    prop::array::uniform6(any::<bool>()).prop_map(|b| Permissions {
        create: b[0],
        select: b[1],
        delete: b[2],
        read: b[3],
        write: b[4],
        execute: b[5],
    })
}

/// A point of this cosmos (no route, not ROOT): a space, bases, maybe a version, maybe a file
/// system path.
fn point() -> impl Strategy<Value = Point> {
    (
        domain(),
        prop::collection::vec(skewer(), 0..4),
        prop::option::of(version()),
        prop::option::of((prop::collection::vec(fs_name(), 0..3), any::<bool>())),
    )
        .prop_map(|(space, bases, version, fs)| {
            let mut point = Point::space(&space).unwrap();
            for base in bases {
                point = point.push_base(&base).unwrap();
            }
            if let Some(version) = version {
                point = point
                    .push(cosmic_space::PointSeg::Version(version))
                    .unwrap();
            }
            if let Some((names, dir)) = fs {
                let mut path = names.join("/");
                if dir && !path.is_empty() {
                    path.push('/');
                }
                point = point.push_path(&path).unwrap();
            }
            point
        })
}

/// Inserts, deletes or replaces a few characters of `text` (on character boundaries).
fn mutate(text: &str, edits: &[(u8, usize, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(op, at, ch) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % (chars.len() + 1)
        };
        match op % 3 {
            0 => chars.insert(at, ch),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = ch,
            _ => chars.push(ch),
        }
    }
    chars.into_iter().collect()
}

/// Characters the grammars use, so mutations stay near valid.
fn grammar_char() -> impl Strategy<Value = char> {
    prop::sample::select(
        ":*<>()+&^=~,./-_ aZ09SsCcRrWwXxDd\u{e9}\u{1F600}\n"
            .chars()
            .collect::<Vec<_>>(),
    )
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, char)>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), grammar_char()), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn selectors_round_trip(selector in selector()) {
        let text = selector.to_string();
        let parsed: Selector = text.parse().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(parsed, selector, "{}", text);
    }

    #[test]
    fn kind_selectors_round_trip(kind in kind_selector()) {
        let text = kind.to_string();
        let parsed: KindSelector = text.parse().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(parsed, kind, "{}", text);
    }

    #[test]
    fn grant_kinds_round_trip(grant in grant_kind()) {
        let text = grant.to_string();
        let parsed: GrantKind = text.parse().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert_eq!(parsed, grant, "{}", text);
    }

    #[test]
    fn permissions_round_trip(permissions in permissions()) {
        let text = permissions.to_string();
        prop_assert_eq!(text.parse::<Permissions>().unwrap(), permissions);
    }

    /// The selector spelled like a point matches it, and nothing one level up or down.
    #[test]
    fn a_point_matches_its_own_selector(point in point()) {
        let text = point.to_string();
        let selector: Selector = text.parse().map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        prop_assert!(selector.matches_point(&point), "{} should match itself", text);
        if let Some(parent) = point.parent().filter(|p| !p.is_root()) {
            prop_assert!(!selector.matches_point(&parent), "{} should not match {}", text, parent);
        }
        if let Some(prefix) = selector.literal_prefix() {
            prop_assert!(point.is_within(&prefix), "{} is not within its prefix {}", text, prefix);
        }
    }

    /// `p+:**` (or `p:/**` with `+` inside a file system) matches p and everything below it,
    /// and `p:**` everything below but not p.
    #[test]
    fn inclusive_selectors_match_a_point_and_its_children(point in point(), child in "[a-z][a-z0-9]{0,4}") {
        let text = point.to_string();
        let (inclusive, exclusive, child) = if point.is_filesystem() {
            let Some(last) = point.last_segment() else { return Ok(()) };
            if !matches!(last, cosmic_space::PointSeg::FsRoot | cosmic_space::PointSeg::Dir(_)) {
                return Ok(());
            }
            let base = text.trim_end_matches('/');
            let joiner = if base.ends_with(':') { "/" } else { "" };
            (
                // `…:/dir+/**`; for the fs root itself, `…:/` has no hop to carry `+`.
                format!("{base}+/**"),
                format!("{base}{joiner}/**"),
                point.push_path(&format!("{child}.txt")).unwrap(),
            )
        } else {
            (
                format!("{text}+:**"),
                format!("{text}:**"),
                point.push_str(&child).unwrap_or_else(|_| point.push_path(&child).unwrap()),
            )
        };
        if text.ends_with(":/") {
            // The fs root: `owner+:/**` matches the owner and files, not `:/` itself.
            let exclusive: Selector = format!("{text}**").parse().unwrap();
            prop_assert!(exclusive.matches_point(&child));
            prop_assert!(!exclusive.matches_point(&point));
            return Ok(());
        }
        let inclusive: Selector = inclusive.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let exclusive: Selector = exclusive.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(inclusive.matches_point(&point), "{} should match {}", inclusive, point);
        prop_assert!(inclusive.matches_point(&child), "{} should match {}", inclusive, child);
        prop_assert!(!exclusive.matches_point(&point), "{} should not match {}", exclusive, point);
        prop_assert!(exclusive.matches_point(&child), "{} should match {}", exclusive, child);
        if let Some(parent) = point.parent().filter(|p| !p.is_root() && !p.is_filesystem()) {
            prop_assert!(!inclusive.matches_point(&parent), "{} should not match {}", inclusive, parent);
        }
    }
}

// No-panic properties: 26,000 cases in all, weighted towards the cheap ones.
proptest! {
    #![proptest_config(ProptestConfig { cases: 7_000, ..ProptestConfig::default() })]

    #[test]
    fn grammar_soup_never_panics(text in "[:*<>()+&^=~,./a-zA-Z0-9 -]{0,40}") {
        let _ = text.parse::<Selector>();
        let _ = text.parse::<KindSelector>();
        let _ = text.parse::<GrantKind>();
    }

    #[test]
    fn mutated_grants_never_panic(grant in grant_kind(), edits in edits()) {
        let text = mutate(&grant.to_string(), &edits);
        if let Ok(parsed) = text.parse::<GrantKind>() {
            prop_assert_eq!(parsed.to_string().parse::<GrantKind>().unwrap(), parsed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        let _ = text.parse::<Selector>();
        let _ = text.parse::<KindSelector>();
        let _ = text.parse::<GrantKind>();
    }

    #[test]
    fn mutated_selectors_never_panic(selector in selector(), edits in edits()) {
        let text = mutate(&selector.to_string(), &edits);
        if let Ok(parsed) = text.parse::<Selector>() {
            // Whatever parses prints canonically.
            prop_assert_eq!(parsed.to_string().parse::<Selector>().unwrap(), parsed);
        }
    }

    #[test]
    fn mutated_kind_selectors_never_panic(kind in kind_selector(), edits in edits()) {
        let text = mutate(&kind.to_string(), &edits);
        if let Ok(parsed) = text.parse::<KindSelector>() {
            prop_assert_eq!(parsed.to_string().parse::<KindSelector>().unwrap(), parsed);
        }
    }
}
