//! Selects and children: stubs read from three short columns — point, kind, status — never
//! from whole records, and returned in `Point` order.
//!
//! - The rows come grouped by kind and status, the points of each group joined by newlines
//!   in one text (no printed point holds one): a handful of rows instead of one per
//!   particle, so neither side pays per-row protocol work, and each kind and status is
//!   parsed once. The grouping always hashes ([`unsorted`]).
//! - A selector that needs no ancestor's kind (its hops but the last accept any kind, none is
//!   inclusive, no file-system part: `**<Mechtron>`, `localhost:*:*<App>`) is matched point
//!   by point, and its candidates are filtered by base kind in SQL when its last hop names
//!   one.
//! - Any other selector is matched by the embedded store's walk (`state::select_each`) over
//!   the candidates and the ancestors of its literal prefix, as the embedded store does.
//!
//! Ordering: printed points sort as their `Point`s do except where a separator meets a
//! smaller character (`app:x` against `app-1`), so the points are sorted as text first
//! (comparing bytes, cheap) and the parsed stubs then by `Point` with a stable sort, which
//! finds its input nearly sorted and merges the few runs — instead of comparing `Point`s over
//! a heap-ordered input (≈ 5× slower for 100k). In text order siblings follow each other, so
//! most points are their predecessor's parent with one segment pushed ([`Siblings`]).

use std::fmt::Display;
use std::future::Future;
use std::str::FromStr;

use cosmic_space::{
    Kind, KindSelector, Pattern, Point, PointSeg, Properties, Selector, Status, Stub,
};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::failure::Failure;
use super::{Candidates, Fetched, decode, parse_point, prepared};
use crate::registry::ParticleRecord;
use crate::registry::embedded::state;
use crate::registry::embedded::store::storage;

/// The select list of the stubs of some rows, grouped by [`BY_STUB`], as [`stubs_of`] reads
/// it: a kind, a status, how many have both, and their points joined by newlines.
pub(super) const STUBS: &str = "kind, status, count(*), string_agg(point, E'\\n')";

/// How the rows of [`STUBS`] are grouped.
pub(super) const BY_STUB: &str = "GROUP BY kind, status";

/// The stubs of every particle `selector` matches, in point order.
pub(super) async fn select(
    client: &impl GenericClient,
    selector: &Selector,
) -> Result<Vec<Stub>, Failure> {
    if let Some(kind) = own_kind_only(selector) {
        let base = match &kind.base {
            Pattern::Exact(base) => Some(base.name()),
            Pattern::Any => None,
        };
        let rows = stub_rows(client, &Candidates::of(selector, false, base)).await?;
        // The selector's other hops accept any kind: each ancestor's is given as the
        // particle's own.
        let mut kinds = Vec::new();
        return stubs_of(
            &rows,
            |candidate| kind.matches(candidate),
            |stub| {
                kinds.clear();
                kinds.resize(stub.point.segments().len(), stub.kind.clone());
                selector.matches_kinds(&stub.point, &kinds)
            },
        );
    }
    let rows = stub_rows(client, &Candidates::of(selector, true, None)).await?;
    // The walk reads records: these carry the stub's fields, and nothing else is read.
    let fetched = Fetched(
        stubs_of(&rows, |_| true, |_| true)?
            .into_iter()
            .map(
                |Stub {
                     point,
                     kind,
                     status,
                 }| ParticleRecord {
                    point,
                    kind,
                    status,
                    owner: Point::root(),
                    properties: Properties::new(),
                    location: None,
                },
            )
            .collect(),
    );
    let mut matched = Vec::new();
    state::select_each(&fetched, selector, |record| {
        matched.extend(fetched.0.element_offset(record));
    });
    // The walk goes in point order, so `matched` ascends: the stubs are moved out, not cloned.
    let mut matched = matched.into_iter().peekable();
    Ok(fetched
        .0
        .into_iter()
        .enumerate()
        .filter(|(at, _)| matched.next_if_eq(at).is_some())
        .map(|(_, record)| Stub {
            point: record.point,
            kind: record.kind,
            status: record.status,
        })
        .collect())
}

/// The candidates' stubs, grouped ([`STUBS`]).
async fn stub_rows(
    client: &impl GenericClient,
    candidates: &Candidates,
) -> Result<Vec<Row>, Failure> {
    let sql = format!(
        "SELECT {STUBS} FROM particles {} {BY_STUB}",
        candidates.clause()
    );
    let statement = prepared(client, &sql).await?;
    let params = candidates.params();
    unsorted(client, async {
        Ok(client.query(&statement, &params).await?)
    })
    .await
}

/// Runs `reads` — statements on `client` not sent yet — in a read-only transaction that
/// forbids sorting wherever the planner has another way, all pipelined: one round trip.
/// Grouping stubs then always hashes; without statistics (a table just filled) the planner
/// believed a filter kept a few hundred of 100k rows and sorted them all on disk.
pub(super) async fn unsorted<T>(
    client: &impl GenericClient,
    reads: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let (begun, read, ended) = tokio::join!(
        client.batch_execute("BEGIN READ ONLY; SET LOCAL enable_sort = off"),
        reads,
        client.batch_execute("COMMIT"),
    );
    begun?;
    let value = read?;
    ended?;
    Ok(value)
}

/// For a selector that needs no ancestor's kind — no file-system part, no inclusive hop, and
/// every hop but the last accepting any kind — the last hop's kind: every particle it
/// matches has its own kind matched by it, so its candidates may be filtered by that kind.
fn own_kind_only(selector: &Selector) -> Option<&KindSelector> {
    if selector.fs.is_some() {
        return None;
    }
    let (last, leading) = selector.hops.split_last()?;
    let any = leading
        .iter()
        .all(|hop| !hop.inclusive && hop.kind.is_any());
    (any && !last.inclusive).then_some(&last.kind)
}

/// The stubs in `rows` (groups: [`STUBS`]) whose group's kind `kind` keeps and that `keep`
/// keeps, in point order.
pub(super) fn stubs_of(
    rows: &[Row],
    mut kind: impl FnMut(&Kind) -> bool,
    mut keep: impl FnMut(&Stub) -> bool,
) -> Result<Vec<Stub>, Failure> {
    let mut groups: Vec<(Kind, Status)> = Vec::with_capacity(rows.len());
    let mut points: Vec<(&str, usize)> = Vec::new();
    for row in rows {
        let group: Kind = parsed(row.try_get(0)?, "kind")?;
        if !kind(&group) {
            continue;
        }
        let status: Status = decode("status", row.try_get(1)?)?;
        let count: i64 = row.try_get(2)?;
        let before = points.len();
        points.extend(
            row.try_get::<_, &str>(3)?
                .split('\n')
                .map(|point| (point, groups.len())),
        );
        if i64::try_from(points.len() - before).ok() != Some(count) {
            return Err(storage(
                "reading stubs",
                format!(
                    "{count} points of a group read as {}",
                    points.len() - before
                ),
            )
            .into());
        }
        groups.push((group, status));
    }
    points.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut siblings = Siblings::default();
    let mut stubs = Vec::with_capacity(points.len());
    for (point, group) in points {
        let (kind, status) = &groups[group];
        let stub = Stub {
            point: siblings.parse(point)?,
            kind: kind.clone(),
            status: status.clone(),
        };
        if keep(&stub) {
            stubs.push(stub);
        }
    }
    stubs.sort_by(|a, b| a.point.cmp(&b.point));
    Ok(stubs)
}

/// Parses printed points in text order, where siblings follow each other: a point whose
/// parent was parsed just before, as the parent of the point before, is that parent with one
/// base segment pushed, which skips parsing the parent again (most of a point's parse).
///
/// Sound because printing is canonical and round-trips: `parent:base` is the printed form of
/// `parent.push_base(base)`, so parsing it gives exactly that point.
#[derive(Default)]
struct Siblings<'t> {
    /// The printed parent of the point parsed last, and that parent.
    parent: Option<(&'t str, Point)>,
}

impl<'t> Siblings<'t> {
    fn parse(&mut self, text: &'t str) -> Result<Point, Failure> {
        let split = text.rsplit_once(':');
        if let (Some((printed, base)), Some((parent_printed, parent))) = (split, &self.parent)
            && printed == *parent_printed
            && let Ok(point) = parent.push_base(base)
        {
            return Ok(point);
        }
        let point = parse_point(text)?;
        self.parent = match (split, point.last_segment(), point.parent()) {
            (Some((printed, last)), Some(PointSeg::Base(base)), Some(parent)) if base == last => {
                Some((printed, parent))
            }
            _ => None,
        };
        Ok(point)
    }
}

/// `text` parsed as a stored `what`.
fn parsed<T>(text: &str, what: &str) -> Result<T, Failure>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(text
        .parse()
        .map_err(|e| storage(&format!("corrupt {what} '{text}' in PostgreSQL"), e))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which selectors are matched point by point; that they select what the walk selects is
    /// checked against the embedded store (`tests/registry_postgres.rs`).
    #[test]
    fn only_selectors_that_need_no_ancestor_kind_are_matched_point_by_point() {
        for (text, own_kind) in [
            ("**<Mechtron>", Some("Mechtron")),
            ("**", Some("*")),
            ("*", Some("*")),
            ("*<Space>", Some("Space")),
            ("localhost:*<App>", Some("App")),
            ("localhost:*:*<Mechtron>", Some("Mechtron")),
            ("*:**<Mechtron>", Some("Mechtron")),
            ("repo:hello:*:**<Artifact<Wasm>>", Some("Artifact<Wasm>")),
            ("localhost:**<UserBase<*>>", Some("UserBase<*>")),
            ("localhost+:**", None),
            ("localhost:**+", None),
            ("**+:**", None),
            ("*<Space>:*<App>:*<Mechtron>", None),
            ("localhost:*<App>:**", None),
            ("localhost:app<App>:**", None),
            ("**<App>:*<Mechtron>", None),
            ("**:/**", None),
            ("repo:hello:1.0.0:/**", None),
        ] {
            let selector: Selector = text.parse().unwrap();
            assert_eq!(
                own_kind_only(&selector).map(ToString::to_string).as_deref(),
                own_kind,
                "{text}"
            );
        }
    }
}
