//! What file stores answer (SPEC §17.2), shared by the host's driver and the SDK's client: the
//! `range` a read asks for, and a directory's listing.

use serde::{Deserialize, Serialize};

/// The bytes a read asks for, resolved against the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No `range` (or one this store does not serve, such as several ranges): the whole file.
    Whole,
    /// Bytes `start..=end`, both within the file.
    Part {
        /// The first byte.
        start: u64,
        /// The last byte (inclusive).
        end: u64,
    },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

impl RangeAsk {
    /// What `range: bytes=a-b`, `bytes=a-` or `bytes=-n` asks of a file of `len` bytes (RFC
    /// 9110 §14.1.2). A header that is not one byte range is ignored (the whole file), as RFC
    /// 9110 allows.
    pub fn of(header: Option<&str>, len: u64) -> RangeAsk {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return RangeAsk::Whole;
        };
        if spec.contains(',') {
            return RangeAsk::Whole;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return RangeAsk::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let number = |text: &str| text.parse::<u64>().ok();
        match (first.is_empty(), last.is_empty()) {
            // bytes=-n: the last n bytes.
            (true, false) => match number(last) {
                Some(0) => RangeAsk::Unsatisfiable,
                Some(_) if len == 0 => RangeAsk::Unsatisfiable,
                Some(n) => RangeAsk::Part {
                    start: len.saturating_sub(n),
                    end: len - 1,
                },
                None => RangeAsk::Whole,
            },
            (false, _) => {
                let Some(start) = number(first) else {
                    return RangeAsk::Whole;
                };
                let end = if last.is_empty() {
                    Some(u64::MAX)
                } else {
                    number(last)
                };
                match end {
                    Some(end) if end < start => RangeAsk::Whole,
                    Some(_) if start >= len => RangeAsk::Unsatisfiable,
                    Some(end) => RangeAsk::Part {
                        start,
                        end: end.min(len - 1),
                    },
                    None => RangeAsk::Whole,
                }
            }
            (true, true) => RangeAsk::Whole,
        }
    }
}

/// One entry of a directory's listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DirEntry {
    /// The name (a directory's ends with `/`).
    pub name: String,
    /// `File` or `Dir`.
    pub kind: String,
    /// A file's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A file's content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// A directory's listing, as its `Http<Get>` answers it (Json).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The entries, in name order.
    pub entries: Vec<DirEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_rfc_9110_says() {
        let part = |start, end| RangeAsk::Part { start, end };
        assert_eq!(RangeAsk::of(None, 10), RangeAsk::Whole);
        assert_eq!(RangeAsk::of(Some("bytes=0-3"), 10), part(0, 3));
        assert_eq!(RangeAsk::of(Some("bytes=4-"), 10), part(4, 9));
        assert_eq!(RangeAsk::of(Some("bytes=5-100"), 10), part(5, 9));
        assert_eq!(RangeAsk::of(Some("bytes=-3"), 10), part(7, 9));
        assert_eq!(RangeAsk::of(Some("bytes=-30"), 10), part(0, 9));
        assert_eq!(RangeAsk::of(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(RangeAsk::of(Some("bytes=-0"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(RangeAsk::of(Some("bytes=0-1,3-4"), 10), RangeAsk::Whole);
        assert_eq!(RangeAsk::of(Some("bytes=3-1"), 10), RangeAsk::Whole);
        assert_eq!(RangeAsk::of(Some("items=0-1"), 10), RangeAsk::Whole);
        assert_eq!(RangeAsk::of(Some("bytes=x-y"), 10), RangeAsk::Whole);
        assert_eq!(RangeAsk::of(Some("bytes=0-"), 0), RangeAsk::Unsatisfiable);
    }
}
