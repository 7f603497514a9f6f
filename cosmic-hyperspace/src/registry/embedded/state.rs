//! The in-memory index every read is served from, and the walks over records that reads and
//! writes share (lines, hierarchies, lineages, selections, subtrees).
//!
//! Records are kept in a `BTreeMap` ordered by [`Point`]: a point's descendants follow it
//! contiguously in that order, so a subtree is one range scan, and a scan meets every parent
//! before its children. [`select_each`] uses the second fact to know the kinds of a
//! candidate's ancestors without looking them up: it keeps a stack of the kinds of the last
//! particle seen at each depth, which, as every registered particle's parent is registered,
//! are exactly the candidate's ancestors.
//!
//! The PostgreSQL registry runs the same walks over the rows it fetched (its `Fetched`
//! implements [`Records`]), so both registries select, line up and delete alike.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use cosmic_space::{
    Grant, Hop, Kind, KindSelector, Lineage, Point, PointHierarchy, RouteSeg, SegmentPattern,
    Selector, Subscription,
};

use super::store::storage;
use super::writer::Overlay;
use crate::registry::{ParticleRecord, RegistryError, RegistryResult};

/// A record in the index, ordered and found by its point alone: the point is stored once,
/// and a scan that compares points reads the same memory the stubs are cloned from.
#[derive(Debug)]
pub(super) struct Indexed(pub(super) ParticleRecord);

impl PartialEq for Indexed {
    fn eq(&self, other: &Self) -> bool {
        self.0.point == other.0.point
    }
}

impl Eq for Indexed {}

impl PartialOrd for Indexed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Indexed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.point.cmp(&other.0.point)
    }
}

impl Borrow<Point> for Indexed {
    fn borrow(&self) -> &Point {
        &self.0.point
    }
}

/// Everything the registry holds but content, as committed to the file.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Every particle, in point order.
    pub(super) records: BTreeSet<Indexed>,
    /// The last number handed out under each parent.
    pub(super) sequences: BTreeMap<Point, u64>,
    /// Every grant, in id order.
    pub(super) grants: BTreeMap<u64, Grant>,
    /// The agent of each token, by the token's SHA-256.
    pub(super) tokens: HashMap<[u8; 32], Point>,
    /// The id the next grant gets.
    pub(super) next_grant: u64,
    /// Every subscription, by its printed subscriber and selector (the order
    /// `Registry::subscriptions` lists them in).
    pub(super) subscriptions: BTreeMap<SubscriptionKey, Subscription>,
}

/// A subscription's printed subscriber and selector: its key in the index and in the file.
pub(super) type SubscriptionKey = (String, String);

/// The keys, among `subscriptions`, of those whose subscriber is a surface of a point at or
/// below `top` that `doomed` accepts. A surface is printed `point@Layer[+Topic]`, so `top`'s
/// printed form starts every such key: one range of keys is read, not every subscription.
pub(super) fn subscriptions_of<'a>(
    subscriptions: &'a BTreeMap<SubscriptionKey, Subscription>,
    top: &Point,
    doomed: impl Fn(&Point) -> bool + 'a,
) -> impl Iterator<Item = &'a SubscriptionKey> + 'a {
    let prefix = top.to_string();
    subscriptions
        .range((prefix.clone(), String::new())..)
        .take_while(move |((subscriber, _), _)| subscriber.starts_with(&prefix))
        .filter(move |(_, subscription)| doomed(&subscription.subscriber.point))
        .map(|(key, _)| key)
}

impl State {
    /// Takes in the changes of a batch that has just been committed to the file.
    pub(super) fn apply(&mut self, overlay: Overlay) {
        for (point, change) in overlay.records.into_changes() {
            match change {
                Some(stored) => {
                    self.records.replace(Indexed(stored.value));
                }
                None => {
                    self.records.remove(&point);
                }
            }
        }
        for (parent, last) in overlay.sequences.into_changes() {
            if let Some(last) = last {
                self.sequences.insert(parent, last);
            }
        }
        for (id, change) in overlay.grants.into_changes() {
            match change {
                Some(stored) => {
                    self.grants.insert(id, stored.value);
                }
                None => {
                    self.grants.remove(&id);
                }
            }
        }
        for (hash, change) in overlay.tokens.into_changes() {
            if let Some(stored) = change {
                self.tokens.insert(hash, stored.value);
            }
        }
        for (key, change) in overlay.subscriptions.into_changes() {
            match change {
                Some(subscription) => {
                    self.subscriptions.insert(key, subscription);
                }
                None => {
                    self.subscriptions.remove(&key);
                }
            }
        }
        if let Some(next) = overlay
            .next_grant
            .into_changes()
            .into_values()
            .flatten()
            .next()
        {
            self.next_grant = next;
        }
    }
}

/// Read access to records: the committed [`State`], or the state as a batch of writes in
/// progress sees it.
pub(crate) trait Records {
    /// The record at `point`.
    fn get(&self, point: &Point) -> Option<&ParticleRecord>;

    /// `within` and every record below it (or, for `None`, every record of this cosmos — route
    /// [`RouteSeg::This`]), in point order.
    fn scan<'a>(
        &'a self,
        within: Option<&Point>,
    ) -> Box<dyn Iterator<Item = &'a ParticleRecord> + 'a>;
}

impl Records for State {
    fn get(&self, point: &Point) -> Option<&ParticleRecord> {
        self.records.get(point).map(|indexed| &indexed.0)
    }

    fn scan<'a>(
        &'a self,
        within: Option<&Point>,
    ) -> Box<dyn Iterator<Item = &'a ParticleRecord> + 'a> {
        let start = within.cloned().unwrap_or_else(Point::root);
        let from = self
            .records
            .range::<Point, _>(start..)
            .map(|indexed| &indexed.0);
        take_within(from, within)
    }
}

/// The records of `from` — an iterator in point order that starts at `within` (or, for
/// `None`, at `ROOT`) — for as long as they are `within` and below it (for `None`: of this
/// cosmos, route [`RouteSeg::This`]): what [`Records::scan`] returns.
pub(crate) fn take_within<'a>(
    from: impl Iterator<Item = &'a ParticleRecord> + 'a,
    within: Option<&Point>,
) -> Box<dyn Iterator<Item = &'a ParticleRecord> + 'a> {
    match within {
        Some(top) => {
            let top = top.clone();
            Box::new(from.take_while(move |record| record.point.is_within(&top)))
        }
        None => Box::new(from.take_while(|record| *record.point.route() == RouteSeg::This)),
    }
}

/// Which of `subtree` (`point` and every point below it) a `delete` of `point` removes:
/// all of them, deepest first and within one depth in point order — unless `point` has
/// children and `force` is off, which is `HasChildren` counting the direct ones.
pub(crate) fn doomed(
    point: &Point,
    mut subtree: Vec<Point>,
    force: bool,
) -> RegistryResult<Vec<Point>> {
    if !force && subtree.len() > 1 {
        let depth = point.segments().len() + 1;
        let children = subtree
            .iter()
            .filter(|p| p.segments().len() == depth)
            .count();
        return Err(RegistryError::HasChildren {
            point: point.clone(),
            children,
        });
    }
    subtree.sort_by(|a, b| {
        b.segments()
            .len()
            .cmp(&a.segments().len())
            .then_with(|| a.cmp(b))
    });
    Ok(subtree)
}

/// The records of `point` and every registered ancestor, from `ROOT` down.
pub(crate) fn line(records: &impl Records, point: &Point) -> RegistryResult<Vec<ParticleRecord>> {
    let own = records
        .get(point)
        .ok_or_else(|| RegistryError::NotFound(point.clone()))?;
    let mut line: Vec<ParticleRecord> = point
        .ancestors()
        .filter_map(|ancestor| records.get(&ancestor).cloned())
        .collect();
    line.push(own.clone());
    Ok(line)
}

/// The kinds of `point`'s segments, outermost first (`ROOT` itself has no segment, so need
/// not be registered); `NotFound` naming the point, or else the first ancestor, that is not
/// registered.
fn kinds_of(records: &impl Records, point: &Point) -> RegistryResult<Vec<Kind>> {
    let own = records
        .get(point)
        .ok_or_else(|| RegistryError::NotFound(point.clone()))?;
    let mut kinds = Vec::with_capacity(point.segments().len());
    for ancestor in point.ancestors().skip(1) {
        let record = records
            .get(&ancestor)
            .ok_or(RegistryError::NotFound(ancestor))?;
        kinds.push(record.kind.clone());
    }
    if !point.is_root() {
        kinds.push(own.kind.clone());
    }
    Ok(kinds)
}

/// `point` with the kind of each segment.
pub(crate) fn hierarchy(records: &impl Records, point: &Point) -> RegistryResult<PointHierarchy> {
    let kinds = kinds_of(records, point)?;
    PointHierarchy::new(point.clone(), kinds).map_err(|e| storage("building a hierarchy", e))
}

/// `point`'s hierarchy and the owner of `ROOT` and of every point down to it.
pub(crate) fn lineage(records: &impl Records, point: &Point) -> RegistryResult<Lineage> {
    let hierarchy = hierarchy(records, point)?;
    let mut owners = Vec::with_capacity(point.segments().len() + 1);
    for at in point.ancestors().chain(std::iter::once(point.clone())) {
        let record = records.get(&at).ok_or(RegistryError::NotFound(at))?;
        owners.push(record.owner.clone());
    }
    Lineage::new(hierarchy, owners).map_err(|e| storage("building a lineage", e))
}

/// Calls `each` with every record `selector` matches, in point order.
///
/// The scan covers only the subtree of the selector's literal prefix. The kinds of a
/// candidate's ancestors come from a stack kept while scanning (see the module docs); only
/// if the stack has a gap — which a registry whose every particle has its parent never shows
/// — are they looked up.
pub(crate) fn select_each<'a, R: Records>(
    records: &'a R,
    selector: &Selector,
    mut each: impl FnMut(&'a ParticleRecord),
) {
    if let Some((top, kind)) = descendants_of_kind(selector) {
        let depth = top.as_ref().map_or(0, |top| top.segments().len());
        for record in records.scan(top.as_ref()) {
            if record.point.segments().len() > depth && kind.matches(&record.kind) {
                each(record);
            }
        }
        return;
    }
    select_matching(records, selector, each);
}

/// [`select_each`] for any selector: every candidate below the literal prefix is matched
/// with the kinds of its segments.
fn select_matching<'a, R: Records>(
    records: &'a R,
    selector: &Selector,
    mut each: impl FnMut(&'a ParticleRecord),
) {
    let prefix = selector.literal_prefix();
    let mut kinds: Vec<Kind> = Vec::new();
    if let Some(prefix) = &prefix {
        for ancestor in prefix.ancestors().skip(1) {
            match records.get(&ancestor) {
                Some(record) => kinds.push(record.kind.clone()),
                // Nothing is registered below a point that is not.
                None => return,
            }
        }
    }
    for record in records.scan(prefix.as_ref()) {
        let depth = record.point.segments().len();
        if depth == 0 {
            kinds.clear();
        } else {
            kinds.truncate(depth - 1);
            if kinds.len() != depth - 1 {
                match kinds_of(records, &record.point) {
                    Ok(looked_up) => kinds = looked_up,
                    Err(_) => continue,
                }
                kinds.pop();
            }
            kinds.push(record.kind.clone());
        }
        if selector.matches_kinds(&record.point, &kinds) {
            each(record);
        }
    }
}

/// For the selectors `**<K>` and `a:b:**<K>` — exact hops that name no kind, then a trailing
/// `**` — the point below which they select (`None`: the whole cosmos) and `K`: they match
/// exactly the particles strictly below it whose own kind `K` matches (a trailing `**`
/// consumes one or more segments and checks its kind on the last), so no per-candidate
/// matching is needed. `None` for any other selector.
fn descendants_of_kind(selector: &Selector) -> Option<(Option<Point>, &KindSelector)> {
    if selector.fs.is_some() {
        return None;
    }
    let (last, leading) = selector.hops.split_last()?;
    if last.segment != SegmentPattern::Recursive || last.inclusive {
        return None;
    }
    let plain = |hop: &Hop| {
        matches!(
            hop.segment,
            SegmentPattern::Exact(_) | SegmentPattern::Version(_)
        ) && !hop.inclusive
            && hop.kind.is_any()
    };
    if !leading.iter().all(plain) {
        return None;
    }
    if leading.is_empty() {
        return Some((None, &last.kind));
    }
    // Every leading hop became a segment of the prefix, or the shape is not the simple one.
    let top = selector.literal_prefix()?;
    (top.segments().len() == leading.len()).then_some((Some(top), &last.kind))
}

/// The direct children of `point`, in point order.
pub(crate) fn children<'a>(records: &'a impl Records, point: &Point) -> Vec<&'a ParticleRecord> {
    let depth = point.segments().len() + 1;
    records
        .scan(Some(point))
        .filter(|record| record.point.segments().len() == depth)
        .collect()
}

impl State {
    /// How many particles there are of each base kind.
    pub(super) fn census(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for Indexed(record) in &self.records {
            *counts.entry(record.kind.base().name()).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(name, count)| (name.to_string(), count))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ParticleRecord;
    use cosmic_space::{Properties, Status};

    fn state(particles: &[(&str, &str)]) -> State {
        let mut state = State::default();
        for (point, kind) in particles {
            let point: Point = point.parse().unwrap();
            state.records.insert(Indexed(ParticleRecord {
                point,
                kind: kind.parse().unwrap(),
                status: Status::Ready,
                owner: Point::hyperuser(),
                properties: Properties::new(),
                location: None,
            }));
        }
        state
    }

    fn points(records: Vec<&ParticleRecord>) -> Vec<String> {
        records.iter().map(|r| r.point.to_string()).collect()
    }

    #[test]
    fn the_shortcut_for_descendants_of_a_kind_agrees_with_full_matching() {
        let state = state(&[
            ("ROOT", "Root"),
            ("localhost", "Space"),
            ("localhost:app", "App"),
            ("localhost:app:echo", "Mechtron"),
            ("localhost:app:echo:/", "File<Dir>"),
            ("localhost:app:echo:/log.txt", "File<File>"),
            ("localhost:app:users", "UserBase"),
            ("localhost:app:users:scott", "User"),
            ("localhost:worker", "Mechtron"),
            ("repo", "Space"),
            ("repo:hello", "BundleSeries"),
            ("repo:hello:1.0.0", "Bundle"),
            ("repo:hello:1.0.0:/", "Artifact<Dir>"),
            ("repo:hello:1.0.0:/wasm/", "Artifact<Dir>"),
            ("repo:hello:1.0.0:/wasm/hello.wasm", "Artifact<Wasm>"),
        ]);
        let mut shortcuts = 0;
        for text in [
            "**<Mechtron>",
            "**",
            "**<*>",
            "localhost:**",
            "localhost:**<App>",
            "localhost:**<*>",
            "localhost:app:**<Mechtron>",
            "localhost:app:echo:**",
            "repo:hello:1.0.0:**",
            "repo:hello:1.0.0:**<Artifact<Wasm>>",
            "repo:hello:1.0.0:**<Artifact>",
            "nowhere:**<Mechtron>",
            "localhost:**<UserBase<*>>",
            "localhost+:**",
            "localhost:**+",
            "*:**<Mechtron>",
            "localhost:*<App>:**",
            "localhost:app<App>:**",
            "**:/**",
            "repo:hello:1.0.0:/**",
            "**+:**",
        ] {
            let selector: Selector = text.parse().unwrap();
            if descendants_of_kind(&selector).is_some() {
                shortcuts += 1;
            }
            let mut fast = Vec::new();
            select_each(&state, &selector, |r| fast.push(r));
            let mut full = Vec::new();
            select_matching(&state, &selector, |r| full.push(r));
            let brute: Vec<&ParticleRecord> = state
                .records
                .iter()
                .map(|indexed| &indexed.0)
                .filter(|r| selector.matches(&hierarchy(&state, &r.point).unwrap()))
                .collect();
            assert_eq!(points(fast.clone()), points(brute.clone()), "{text}");
            assert_eq!(points(full), points(brute), "{text}");
        }
        assert_eq!(shortcuts, 13, "selectors that take the shortcut");
    }
}
