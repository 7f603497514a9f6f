//! The `visits` mechtron: counts page visits in a key-value store (SPEC §17.1).
//!
//! The particle names its store in a property, `kv` (e.g. `+kv=localhost:app:data`), and acts
//! as itself there: the store's owner grants it `rw` (`grant +csd-RWX on localhost:app:data
//! to localhost:app:visits`), or every call is refused with 403.

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
}

#[cfg(test)]
mod tests {
    use cosmic_mechtron::space::{Properties, Status, Stub};
    use cosmic_mechtron::testing::TestMechtron;

    use super::*;

    fn visits() -> Result<TestMechtron<Visits>> {
        let mut properties = Properties::new();
        properties.set(cosmic_mechtron::MECHTRON_PROPERTY, "visits");
        properties.set("kv", "localhost:app:data");
        let details = Details {
            stub: Stub {
                point: "localhost:app:visits".parse()?,
                kind: Kind::Mechtron,
                status: Status::Ready,
            },
            properties,
        };
        TestMechtron::<Visits>::with_details(details)?.with_key_value_store("localhost:app:data")
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
    fn without_its_store_it_says_so() -> Result<()> {
        let mut visits = TestMechtron::<Visits>::new()?;
        let answer = visits.get("/visits");
        assert_eq!(answer.status, StatusCode::ERROR);
        Ok(())
    }
}
