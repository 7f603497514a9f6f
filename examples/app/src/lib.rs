//! The `app` mechtron: greets `GET /app/{name}` on the web.
//!
//! The `localhost` Space's bind (`bundle/bind/localhost.bind`) forwards `/app/…` requests
//! here unchanged, so the route below sees the request's own path and captures the name.

use cosmic_mechtron::prelude::*;

#[mechtron]
#[derive(Debug, Default)]
pub struct App;

#[handlers]
impl App {
    /// `GET /app/{name}` (a query is not part of the path routes match): `Hello, {name}!` as
    /// text.
    #[route("Http<Get>/app/(?P<name>[^/]+)")]
    fn greet(&mut self, #[var] name: String) -> HttpResponse {
        HttpResponse::text(format!("Hello, {name}!\n"))
    }
}

#[cfg(test)]
mod tests {
    use cosmic_mechtron::testing::TestMechtron;

    use super::*;

    #[test]
    fn greets_the_name_in_the_path() -> Result<()> {
        let mut app = TestMechtron::<App>::new()?;
        let answer = app.get("/app/world?lang=en");
        assert_eq!(answer.status.as_u16(), 200);
        assert_eq!(answer.body, Substance::Bin(b"Hello, world!\n".to_vec()));
        assert_eq!(
            answer.headers.get("content-type"),
            Some("text/plain; charset=utf-8")
        );
        Ok(())
    }

    #[test]
    fn other_paths_are_not_its_business() -> Result<()> {
        let mut app = TestMechtron::<App>::new()?;
        assert_eq!(app.get("/app/").status.as_u16(), 404);
        assert_eq!(app.get("/elsewhere").status.as_u16(), 404);
        Ok(())
    }
}
