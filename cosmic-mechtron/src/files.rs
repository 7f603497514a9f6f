//! [`Files`]: a file store (SPEC §17.2) as a mechtron uses it — `ctx.files(store)` — a typed
//! client over the waves a store's files answer, sent as the mechtron itself (the store must
//! grant it `r` to read and `w` to write).

use cosmic_space::{
    Condition, DirEntry, DirectedCore, HttpMethod, Listing, Method, Point, ReflectedCore,
    StatusCode, Substance,
};

use crate::kv::{bytes_of, failed};
use crate::{Ctx, Error, Result};

/// A file read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its `etag`, for a conditional write.
    pub etag: String,
}

/// A file store seen from a mechtron.
#[derive(Debug)]
pub struct Files<'c> {
    ctx: &'c Ctx,
    store: Point,
}

impl<'c> Files<'c> {
    pub(crate) fn new(ctx: &'c Ctx, store: Point) -> Files<'c> {
        Files { ctx, store }
    }

    /// The point of `path` (`/docs/a.txt`, `docs/`) in the store.
    pub fn point(&self, path: &str) -> Result<Point> {
        self.store.push_path(path).map_err(|err| {
            Error::status(StatusCode::BAD_REQUEST, format!("the path '{path}': {err}"))
        })
    }

    fn ask(&self, path: &str, core: DirectedCore) -> Result<ReflectedCore> {
        Ok(self.ctx.ping_core(self.point(path)?, core).core)
    }

    /// Stores `bytes` at `path` (making its directories), with `content_type` or one from the
    /// extension; returns the new etag.
    pub fn put(
        &self,
        path: &str,
        bytes: impl Into<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Result<String> {
        self.put_if(path, bytes, content_type, Condition::Always)
    }

    /// Stores `bytes` at `path` if `condition` holds (412 otherwise); returns the new etag.
    pub fn put_if(
        &self,
        path: &str,
        bytes: impl Into<Vec<u8>>,
        content_type: Option<&str>,
        condition: Condition,
    ) -> Result<String> {
        let mut core = DirectedCore::new(Method::Http(HttpMethod::Put))
            .with_body(Substance::Bin(bytes.into()));
        if let Some(content_type) = content_type {
            core = core.with_header("content-type", content_type);
        }
        core = match condition {
            Condition::Always => core,
            Condition::IfMatch(tag) => core.with_header("if-match", tag),
            Condition::IfNoneMatch => core.with_header("if-none-match", "*"),
        };
        let answer = ok(self.ask(path, core)?)?;
        Ok(answer.headers.get("etag").unwrap_or_default().to_string())
    }

    /// The file at `path`, if there is one.
    pub fn get(&self, path: &str) -> Result<Option<FileContent>> {
        let answer = self.ask(path, DirectedCore::new(Method::Http(HttpMethod::Get)))?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer = ok(answer)?;
        let etag = answer.headers.get("etag").unwrap_or_default().to_string();
        let content_type = answer.headers.get("content-type").map(str::to_string);
        Ok(Some(FileContent {
            bytes: bytes_of(answer.body)?,
            content_type,
            etag,
        }))
    }

    /// Bytes `start..=end` of the file at `path` (fewer at its end), if there is one.
    pub fn range(&self, path: &str, start: u64, end: u64) -> Result<Option<Vec<u8>>> {
        let core = DirectedCore::new(Method::Http(HttpMethod::Get))
            .with_header("range", format!("bytes={start}-{end}"));
        let answer = self.ask(path, core)?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(bytes_of(ok(answer)?.body)?))
    }

    /// Removes the file (or empty directory) at `path`; whether it was there.
    pub fn delete(&self, path: &str) -> Result<bool> {
        let answer = self.ask(path, DirectedCore::new(Method::Http(HttpMethod::Delete)))?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        ok(answer).map(|_| true)
    }

    /// The files and directories in the directory `path` (`/` for the store's root).
    pub fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        let dir = if path.ends_with('/') {
            path.to_string()
        } else {
            format!("{path}/")
        };
        let answer = ok(self.ask(&dir, DirectedCore::new(Method::Http(HttpMethod::Get)))?)?;
        match answer.body {
            Substance::Json(json) => Ok(json.to_value::<Listing>()?.entries),
            other => Err(Error::status(
                StatusCode::ERROR,
                format!(
                    "the store answered a listing with {}, not Json",
                    other.kind()
                ),
            )),
        }
    }
}

/// A 2xx answer, or an [`Error`] with its status and message.
fn ok(core: ReflectedCore) -> Result<ReflectedCore> {
    if core.is_ok() {
        Ok(core)
    } else {
        Err(failed(core))
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::TestMechtron;

    const STORE: &str = "localhost:app:files";

    #[mechtron]
    #[derive(Debug, Default)]
    pub struct Archivist;

    #[handlers]
    impl Archivist {
        #[route("Ext<Archive>")]
        fn archive(&self, ctx: &mut Ctx, text: String) -> Result<String> {
            let files = ctx.files(STORE.parse()?);
            let etag = files.put("/notes/today.txt", text.clone(), Some("text/plain"))?;
            let stale = files.put_if("/notes/today.txt", "lost", None, Condition::IfNoneMatch);
            if stale.as_ref().map_err(Error::status_code) != Err(StatusCode::PRECONDITION_FAILED) {
                return Err(Error::msg(format!("a conditional put answered {stale:?}")));
            }
            files.put("/notes/old.txt", "old", None)?;
            let read = files
                .get("/notes/today.txt")?
                .ok_or(Error::msg("no file"))?;
            let part = files.range("/notes/today.txt", 0, 2)?.unwrap_or_default();
            let names: Vec<String> = files.list("/notes")?.into_iter().map(|e| e.name).collect();
            let removed = files.delete("/notes/old.txt")?;
            let missing = files.get("/notes/nothing.txt")?;
            Ok(format!(
                "{} {} {:?} {names:?} {removed} {} {}",
                String::from_utf8_lossy(&read.bytes),
                read.etag == etag,
                String::from_utf8_lossy(&part),
                missing.is_none(),
                read.content_type.unwrap_or_default(),
            ))
        }
    }

    #[test]
    fn a_mechtron_keeps_files_in_an_in_memory_store() {
        let mut archivist = TestMechtron::<Archivist>::new()
            .unwrap()
            .with_file_store(STORE)
            .unwrap();
        let answer = archivist.ping("Ext<Archive>", "sunny");
        assert_eq!(
            answer.body,
            Substance::from("sunny true \"sun\" [\"old.txt\", \"today.txt\"] true true text/plain"),
            "{answer:?}"
        );
        let file: Point = "localhost:app:files:/notes/today.txt".parse().unwrap();
        assert_eq!(archivist.host().file(&file), Some(b"sunny".to_vec()));
    }
}
