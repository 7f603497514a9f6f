//! The `visits` mechtron: counts page visits in a key-value store (SPEC §17.1) and keeps
//! uploaded files in a file store (SPEC §17.2).
//!
//! The particle names its stores in properties, `kv` and `files` (e.g.
//! `+kv=localhost:visits:data, +files=localhost:visits:files`), and acts as itself there: the
//! stores' owner grants it `rwx` (`grant +csd-RWX on localhost:visits:data to
//! localhost:visits:counter`), or every call is refused with 403.

use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Debug, Default)]
pub struct Visits;

/// The point a property of the particle names.
fn store(ctx: &Ctx, property: &str) -> Result<Point> {
    let text = ctx.property(property).ok_or_else(|| {
        Error::status(
            StatusCode::ERROR,
            format!("this mechtron has no '{property}' property naming its store"),
        )
    })?;
    Ok(text.parse()?)
}

#[handlers]
impl Visits {
    /// `GET /visits`: one more visit, counted in the store (so the count survives restarts
    /// and is shared by every instance).
    #[route("Http<Get>/visits")]
    fn visit(&mut self, ctx: &mut Ctx) -> Result<HttpResponse> {
        let visits = ctx.kv(store(ctx, "kv")?).increment("visits", 1)?;
        Ok(
            HttpResponse::ok(format!("You are visitor number {visits}.\n"))
                .with_header("content-type", "text/plain; charset=utf-8"),
        )
    }

    /// `PUT /files/{name}`: keeps the body as `uploads/{name}` in the file store, with the
    /// request's content type (or one from the name's extension).
    #[route("Http<Put>/files/(?P<name>[A-Za-z0-9._-]+)")]
    fn upload(&mut self, ctx: &mut Ctx, request: HttpRequest) -> Result<HttpResponse> {
        let name = ctx.var("name").unwrap_or_default().to_string();
        let files = ctx.files(store(ctx, "files")?);
        let content_type = request.headers.get("content-type");
        let etag = files.put(&format!("/uploads/{name}"), request.body, content_type)?;
        Ok(HttpResponse::ok(format!("Stored {name}.\n"))
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_header("etag", etag))
    }

    /// `GET /files/{name}`: the uploaded file, with its content type; 404 if there is none.
    #[route("Http<Get>/files/(?P<name>[A-Za-z0-9._-]+)")]
    fn download(&mut self, ctx: &mut Ctx) -> Result<HttpResponse> {
        let name = ctx.var("name").unwrap_or_default().to_string();
        let files = ctx.files(store(ctx, "files")?);
        let Some(file) = files.get(&format!("/uploads/{name}"))? else {
            return Err(Error::status(
                StatusCode::NOT_FOUND,
                format!("no file {name}"),
            ));
        };
        let content_type = file
            .content_type
            .unwrap_or_else(|| "application/octet-stream".to_string());
        Ok(HttpResponse::ok(file.bytes)
            .with_header("content-type", content_type)
            .with_header("etag", file.etag))
    }
}

#[cfg(test)]
mod tests {
    use cosmic_mechtron::space::{Properties, Status, Stub};
    use cosmic_mechtron::testing::TestMechtron;

    use super::*;

    fn visits() -> Result<TestMechtron<Visits>> {
        let mut properties = Properties::new();
        properties.set(cosmic_mechtron::MECHTRON_PROPERTY, "visits");
        properties.set("kv", "localhost:visits:data");
        properties.set("files", "localhost:visits:files");
        let details = Details {
            stub: Stub {
                point: "localhost:visits:counter".parse()?,
                kind: Kind::Mechtron,
                status: Status::Ready,
            },
            properties,
        };
        TestMechtron::<Visits>::with_details(details)?
            .with_key_value_store("localhost:visits:data")?
            .with_file_store("localhost:visits:files")
    }

    #[test]
    fn every_visit_counts() -> Result<()> {
        let mut visits = visits()?;
        assert_eq!(
            visits.get("/visits").body,
            Substance::Bin(b"You are visitor number 1.\n".to_vec())
        );
        assert_eq!(
            visits.get("/visits").body,
            Substance::Bin(b"You are visitor number 2.\n".to_vec())
        );
        Ok(())
    }

    #[test]
    fn uploads_come_back_with_their_content_type() -> Result<()> {
        let mut visits = visits()?;
        let upload = DirectedCore::new(Method::Http(HttpMethod::Put))
            .with_path("/files/cat.png")
            .with_header("content-type", "image/png")
            .with_body(Substance::Bin(vec![137, 80, 78, 71]));
        let stored = visits.request(upload);
        assert_eq!(stored.status, StatusCode::OK, "{stored:?}");
        let download = visits.get("/files/cat.png");
        assert_eq!(download.body, Substance::Bin(vec![137, 80, 78, 71]));
        assert_eq!(download.headers.get("content-type"), Some("image/png"));
        assert_eq!(visits.get("/files/dog.png").status, StatusCode::NOT_FOUND);
        Ok(())
    }

    #[test]
    fn without_its_store_it_says_so() -> Result<()> {
        let mut visits = TestMechtron::<Visits>::new()?;
        let answer = visits.get("/visits");
        assert_eq!(answer.status, StatusCode::ERROR);
        Ok(())
    }
}
