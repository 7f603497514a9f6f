//! Compile-time checking of route strings (SPEC §7, §11.1) with `cosmic-space`'s parsers:
//! a method pattern, then optionally a path regex beginning with `/`. The SDK parses the same
//! grammar at run time (`cosmic_mechtron::RouteSelector::parse`); a proc-macro crate cannot
//! share it, so the few lines are mirrored there.

use cosmic_space::{Cursor, MethodPattern, ParseError, PathRegex, Span};

/// The variables a route string's path regex captures (none without a regex) when
/// `source` is a route string; otherwise the parser's message with a caret under the
/// offending part.
pub(crate) fn check(source: &str) -> Result<Vec<String>, String> {
    parse(source).map_err(|error| render(source, &error))
}

fn parse(source: &str) -> Result<Vec<String>, ParseError> {
    let mut c = Cursor::new("route", source);
    c.skip_ws();
    MethodPattern::parse(&mut c)?;
    c.skip_ws();
    if c.at_end() {
        return Ok(Vec::new());
    }
    if c.peek() != Some('/') {
        return Err(c.error("expected the end of the route or a path regex beginning with '/'"));
    }
    let start = c.pos();
    PathRegex::new(c.rest().trim_end())
        .map(|regex| regex.capture_names().map(str::to_string).collect())
        .map_err(|(span, message)| {
            c.error_span(Span::new(start + span.start, start + span.end), message)
        })
}

/// `invalid route: MESSAGE`, then the route with a caret line under the error's span.
fn render(source: &str, error: &ParseError) -> String {
    let start = error.span.start.min(source.len());
    let end = error.span.end.clamp(start, source.len());
    let lead = source.get(..start).map_or(0, |s| s.chars().count());
    let width = source
        .get(start..end)
        .map_or(1, |s| s.chars().count().max(1));
    format!(
        "invalid route: {}\n  {source}\n  {}{}",
        error.message,
        " ".repeat(lead),
        "^".repeat(width)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_routes_pass() {
        for source in [
            "Ext<Hello>",
            "Http<Get>/greet/(?P<who>.*)",
            "Http<*>",
            "*",
            "Cmd<Read> /",
        ] {
            assert!(check(source).is_ok(), "{source}");
        }
    }

    #[test]
    fn routes_tell_their_variables() {
        assert_eq!(
            check("Http<Get>/items/(?P<id>[0-9]+)/(?P<part>.*)"),
            Ok(vec!["id".to_string(), "part".to_string()])
        );
        assert_eq!(check("Ext<Hello>"), Ok(Vec::new()));
        assert_eq!(check("Http<Get>/items/[0-9]+"), Ok(Vec::new()));
    }

    #[test]
    fn bad_routes_point_at_the_problem() {
        assert_eq!(
            check("Ext<hello>").unwrap_err(),
            "invalid route: expected an Ext method name in CamelCase ([A-Z][A-Za-z0-9]*)\n  \
             Ext<hello>\n      ^^^^^"
        );
        let error = check("Http<Get>/a(").unwrap_err();
        assert!(
            error.starts_with("invalid route: invalid path regex:"),
            "{error}"
        );
        let error = check("Http<Get> greet").unwrap_err();
        assert!(error.contains("path regex beginning with '/'"), "{error}");
        let error = check("Http<Fetch>").unwrap_err();
        assert!(error.contains("unknown Http method 'Fetch'"), "{error}");
    }
}
