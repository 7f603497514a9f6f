//! The check of [`Registry::write_content`]: content and properties change together, or not
//! at all.

use std::sync::Arc;

use super::{Outcome, changes, cosmos, ok, point, refused, register_each};
use crate::registry::{Registry, RegistryError};

/// `write_content` replaces a particle's bytes and applies property changes in one step; a
/// change to a locked property refuses both; a point that is not registered is `NotFound`.
pub async fn content_is_written_with_its_properties<R: Registry>(registry: Arc<R>) -> Outcome {
    cosmos(registry.as_ref()).await?;
    register_each(
        registry.as_ref(),
        &[
            ("localhost:files", "FileStore"),
            ("localhost:files:/", "File<Dir>"),
            ("localhost:files:/a.txt", "File<File>"),
        ],
    )
    .await?;
    let file = point("localhost:files:/a.txt")?;
    let properties = ok(
        registry
            .write_content(
                &file,
                b"one".to_vec(),
                &changes("{ +etag=1, +@kind=text }")?,
            )
            .await,
        "writing content",
    )?;
    check_eq!(
        properties.value("etag"),
        Some("1"),
        "the etag written with the content"
    );
    check_eq!(
        ok(registry.content(&file).await, "content")?,
        Some(b"one".to_vec()),
        "the content written"
    );
    let locked = registry
        .write_content(
            &file,
            b"two".to_vec(),
            &changes("{ +etag=2, +kind=binary }")?,
        )
        .await;
    refused(
        locked,
        RegistryError::PropertyLocked {
            point: file.clone(),
            name: "kind".into(),
        },
        "a write that changes a locked property",
    )?;
    check_eq!(
        ok(registry.content(&file).await, "content")?,
        Some(b"one".to_vec()),
        "the content after a refused write"
    );
    let record = ok(registry.record(&file).await, "record")?;
    check_eq!(
        record.properties.value("etag"),
        Some("1"),
        "the etag after a refused write"
    );
    let nowhere = point("localhost:files:/nothing.txt")?;
    refused(
        registry
            .write_content(&nowhere, b"x".to_vec(), &changes("{ +etag=x }")?)
            .await,
        RegistryError::NotFound(nowhere.clone()),
        "a write to a file that is not registered",
    )?;
    Ok(())
}
