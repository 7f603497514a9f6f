//! `publish ^[ bundle.zip ]-> REPO:SERIES:VERSION` (SPEC §11.4): unpack a bundle zip into
//! immutable `Artifact` particles, all at once or not at all.

use std::sync::Arc;

use cosmic_space::{
    Agent, CreateStrategy, Kind, Permission, Point, PointSeg, PropertyChanges, Status, StatusCode,
    Substance,
};

use super::Failure;
use crate::bundle::{Bundle, BundleLimits};
use crate::lifecycle::Lifecycle;
use crate::registry::{Entry, Registration, RegistryError};
use crate::security;

/// Publishes the zip `bytes` as the bundle at `point`: the series is created if it does not
/// exist yet, the bundle must not (bundles are immutable: publishing a version twice is 409),
/// and every file and directory becomes an artifact.
pub(super) async fn publish(
    life: &Arc<Lifecycle>,
    agent: &Agent,
    point: &Point,
    bytes: &[u8],
) -> Result<Substance, Failure> {
    let registry = life.registry();
    if !matches!(point.last_segment(), Some(PointSeg::Version(_))) {
        return Err(Failure::bad(format!(
            "publish needs a bundle point ending in a version, like localhost:repo:hello:1.0.0 (got {point})"
        )));
    }
    let series = point.parent().unwrap_or_else(Point::root);
    let repo = series.parent().unwrap_or_else(Point::root);
    let series_exists = match registry.record(&series).await {
        Ok(record) if record.kind == Kind::BundleSeries => true,
        Ok(record) => {
            return Err(Failure::bad(format!(
                "{series} is a {}, not a BundleSeries: bundles are published into a repo",
                record.kind
            )));
        }
        Err(RegistryError::NotFound(_)) => false,
        Err(err) => return Err(err.into()),
    };
    // Publishing writes into the series (or, for a new series, into the repo).
    let writes_into = if series_exists { &series } else { &repo };
    let repo_record = registry.record(&repo).await.map_err(|err| match err {
        RegistryError::NotFound(_) => Failure::new(
            StatusCode::NOT_FOUND,
            format!("cannot publish {point}: the repo {repo} does not exist"),
        ),
        other => other.into(),
    })?;
    if !series_exists {
        Kind::BundleSeries.may_live_under(&repo_record.kind)?;
    }
    security::require(registry.as_ref(), agent, writes_into, Permission::Write).await?;
    let bundle = Bundle::from_zip(bytes, &BundleLimits::default())
        .map_err(|err| Failure::new(err.status(), format!("{err}")))?;
    let files = bundle
        .into_entries(point)
        .map_err(|err| Failure::new(err.status(), format!("{err}")))?;

    let owner = agent.to_point();
    let registration = |point: Point, kind: Kind, strategy| Registration {
        point,
        kind,
        owner: owner.clone(),
        properties: PropertyChanges::new(),
        strategy,
        status: Status::Pending,
    };
    let mut entries = Vec::with_capacity(files.len() + 2);
    if !series_exists {
        entries.push(Entry {
            registration: registration(series.clone(), Kind::BundleSeries, CreateStrategy::Ensure),
            content: None,
        });
    }
    entries.push(Entry {
        registration: registration(point.clone(), Kind::Bundle, CreateStrategy::Commit),
        content: None,
    });
    entries.extend(files.into_iter().map(|file| Entry {
        registration: registration(file.point, file.kind, CreateStrategy::Commit),
        content: file.content,
    }));
    let records = registry.register_all(entries).await?;
    // Every artifact is started at once (each is a wave to its host star).
    let mut starting = tokio::task::JoinSet::new();
    for record in records {
        let life = life.clone();
        starting.spawn(async move { life.bring_to_life(&record, false).await });
    }
    let mut failure = None;
    while let Some(started) = starting.join_next().await {
        match started {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failure = failure.or(Some(Failure::from(err))),
            Err(err) => {
                failure = failure.or(Some(Failure::new(StatusCode::ERROR, err.to_string())));
            }
        }
    }
    if let Some(failure) = failure {
        // Nothing half-done: a bundle that cannot come to life is removed whole.
        let _ = registry.delete(point, true).await;
        return Err(failure);
    }
    Ok(Substance::Point(point.clone()))
}
