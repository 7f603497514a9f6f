//! The query of a directed wave's path (SPEC §5.1, §11.1).
//!
//! A directed core's path is a request target as HTTP has it: the path, then optionally `?`
//! and a query (`/greet/ann?x=1&y=two`). Binds and routes match the path alone
//! ([`split_target`]); the query is there to be read, parsed ([`Query`]).

use std::borrow::Cow;
use std::fmt;

/// Splits a request target at its first `?`: the path, and the query without the `?` (if
/// there is one). `"/greet/ann?x=1"` → `("/greet/ann", Some("x=1"))`.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Decodes the percent-escapes of a path segment or route variable (`ann%20lee` →
/// `ann lee`). Never fails: a `%` not followed by two hex digits is kept as written, and
/// bytes that do not form UTF-8 become U+FFFD. A `+` stays a `+` (only a query's `+` is a
/// space).
pub fn percent_decode(text: &str) -> Cow<'_, str> {
    decode(text, false)
}

/// Decodes `text`; `plus_is_space` for the names and values of a query
/// (`application/x-www-form-urlencoded`).
fn decode(text: &str, plus_is_space: bool) -> Cow<'_, str> {
    let escaped = text.contains('%') || (plus_is_space && text.contains('+'));
    if !escaped {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A parsed query (`x=1&tag=a&tag=b&flag`): its pairs in order, names and values
/// percent-decoded with `+` as a space, repeated names kept, a name without `=` taking the
/// value `""`.
///
/// Parsing never fails: a malformed escape is kept as written and bytes that are not UTF-8
/// become U+FFFD, as browsers do.
///
/// ```
/// use cosmic_space::Query;
///
/// let query = Query::parse("who=ann%20lee&tag=a&tag=b&flag&q=1+2");
/// assert_eq!(query.get("who"), Some("ann lee"));
/// assert_eq!(query.get_all("tag").collect::<Vec<_>>(), ["a", "b"]);
/// assert_eq!(query.get("flag"), Some(""));
/// assert_eq!(query.get("q"), Some("1 2"));
/// assert_eq!(query.get("nobody"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `query` (the part after `?`, without it). Empty pieces (`a=1&&b=2`) are
    /// skipped.
    pub fn parse(query: &str) -> Query {
        let pairs = query
            .split('&')
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
                (
                    decode(name, true).into_owned(),
                    decode(value, true).into_owned(),
                )
            })
            .collect();
        Query { pairs }
    }

    /// The query of a request target (`/greet?x=1` → `x=1`); empty when it has none.
    pub fn of_target(target: &str) -> Query {
        split_target(target).1.map(Query::parse).unwrap_or_default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the query names `name` (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many pairs it holds.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether it holds no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Display for Query {
    /// The pairs again as `name=value&…`, escaped so that [`Query::parse`] reads them back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            write_escaped(f, name)?;
            f.write_str("=")?;
            write_escaped(f, value)?;
        }
        Ok(())
    }
}

/// Writes `text` with every byte but unreserved ones (RFC 3986) percent-escaped.
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            write!(f, "{}", byte as char)?;
        } else {
            write!(f, "%{byte:02X}")?;
        }
    }
    Ok(())
}

impl<'a> IntoIterator for &'a Query {
    type Item = (&'a str, &'a str);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_first_question_mark() {
        assert_eq!(split_target("/greet/ann"), ("/greet/ann", None));
        assert_eq!(split_target("/greet/ann?x=1"), ("/greet/ann", Some("x=1")));
        assert_eq!(split_target("/a?b?c"), ("/a", Some("b?c")));
        assert_eq!(split_target("/a?"), ("/a", Some("")));
    }

    #[test]
    fn queries_keep_order_and_repeated_names() {
        let query = Query::parse("x=1&y=two&x=3&&flag&=empty-name");
        assert_eq!(
            query.iter().collect::<Vec<_>>(),
            [
                ("x", "1"),
                ("y", "two"),
                ("x", "3"),
                ("flag", ""),
                ("", "empty-name")
            ]
        );
        assert_eq!(query.get("x"), Some("1"));
        assert_eq!(query.get_all("x").collect::<Vec<_>>(), ["1", "3"]);
        assert!(query.contains("flag"));
        assert!(!query.contains("nobody"));
        assert_eq!(query.len(), 5);
        assert!(Query::parse("").is_empty());
        assert_eq!(Query::of_target("/a?b=c").get("b"), Some("c"));
        assert!(Query::of_target("/a").is_empty());
        assert_eq!((&query).into_iter().count(), 5);
    }

    #[test]
    fn escapes_decode_and_malformed_ones_stay() {
        let query = Query::parse("name=ann%20lee&q=1+2&a%3Db=c%26d&bad=%zz%4&pct=100%&utf=%C3%A9");
        assert_eq!(query.get("name"), Some("ann lee"));
        assert_eq!(query.get("q"), Some("1 2"));
        assert_eq!(query.get("a=b"), Some("c&d"));
        assert_eq!(query.get("bad"), Some("%zz%4"));
        assert_eq!(query.get("pct"), Some("100%"));
        assert_eq!(query.get("utf"), Some("é"));
        // Bytes that are not UTF-8 become U+FFFD, never a panic.
        assert_eq!(Query::parse("x=%FF%FE").get("x"), Some("\u{FFFD}\u{FFFD}"));
        assert_eq!(percent_decode("a+b%2Fc"), "a+b/c");
        assert!(matches!(percent_decode("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn queries_print_back_to_themselves() {
        for text in ["x=1&y=two&x=3", "name=ann lee&sym=a&b=c%&e=é", "flag&q=1+2"] {
            let query = Query::parse(text);
            assert_eq!(Query::parse(&query.to_string()), query, "{text}");
        }
        assert_eq!(Query::parse("who=ann lee").to_string(), "who=ann%20lee");
    }

    proptest::proptest! {
        /// Any text parses without a panic, and what a query prints parses back to it.
        #[test]
        fn any_text_parses_and_round_trips(text in "[%0-9a-fA-Fg+=& é\u{80}-\u{10FFFF}]{0,40}") {
            let query = Query::parse(&text);
            proptest::prop_assert_eq!(Query::parse(&query.to_string()), query);
            let _ = percent_decode(&text);
        }
    }
}
