//! `starlane.toml`: parsed by the `toml` crate into its spanned document (every key keeps
//! where it was written), then checked against [`Setting::ALL`]. A key that is no setting, a
//! table that is none, a value of the wrong type and a setting given twice (under its old
//! flat key and in its table) are errors naming the line and the key; the values themselves
//! are checked by [`MachineConfig::resolve`](super::MachineConfig::resolve), as flags and
//! variables are, naming `starlane.toml line N ([table] key)`.

use std::fs;
use std::io;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeInteger, DeString, DeTable, DeValue};

use super::{ConfigError, SETTINGS_FILE, Setting, SettingType};

/// One value `starlane.toml` gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileValue {
    /// Which setting.
    pub(super) setting: Setting,
    /// The value as text (a whole number in decimal).
    pub(super) value: String,
    /// `starlane.toml line 3 ([http] listen)`, for messages.
    pub(super) source: String,
    /// The line it is on.
    line: usize,
}

/// The values `path` gives; an absent file gives none.
pub(super) fn read(path: &Path) -> Result<Vec<FileValue>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse(&text).map_err(|(line, message)| ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// What is wrong, and on which line (1-based).
type Problem = (usize, String);

/// The values of the document `text`, or the first problem in it.
pub(super) fn parse(text: &str) -> Result<Vec<FileValue>, Problem> {
    let document = DeTable::parse(text).map_err(|err| {
        let line = err.span().map_or(1, |span| line_of(text, span.start));
        let written = text.lines().nth(line - 1).unwrap_or_default().trim();
        let message = err.message().trim().replace('\n', "; ");
        (line, format!("{message}, in `{written}`"))
    })?;
    let mut values = Vec::new();
    for (key, value) in in_order(document.get_ref()) {
        let name = key.get_ref().as_ref();
        let line = line_of(text, key.span().start);
        match value.get_ref() {
            DeValue::Table(table) if tables().any(|known| known == name) => {
                for (key, value) in in_order(table) {
                    let line = line_of(text, key.span().start);
                    let key = key.get_ref().as_ref();
                    let setting = Setting::ALL
                        .into_iter()
                        .find(|setting| setting.table == Some(name) && setting.key == key)
                        .ok_or_else(|| (line, unknown_in_table(name, key)))?;
                    values.push(value_of(
                        setting,
                        setting.file_name(),
                        value.get_ref(),
                        line,
                    )?);
                }
            }
            DeValue::Table(_) => return Err((line, not_a_table(name))),
            DeValue::Array(_) if tables().any(|known| known == name) => {
                return Err((
                    line,
                    format!("[[{name}]] is not used: write [{name}] once, then its settings"),
                ));
            }
            value => {
                let setting = Setting::ALL
                    .into_iter()
                    .find(|setting| {
                        (setting.table.is_none() && setting.key == name)
                            || setting.legacy == Some(name)
                    })
                    .ok_or_else(|| (line, unknown_at_top(name)))?;
                values.push(value_of(setting, name.to_string(), value, line)?);
            }
        }
    }
    values.sort_by_key(|value| value.line);
    for (at, value) in values.iter().enumerate() {
        if let Some(first) = values[..at].iter().find(|v| v.setting == value.setting) {
            return Err((
                value.line,
                format!(
                    "{} is set twice: {} on line {} already (keep one, as {})",
                    spelling(&value.source),
                    spelling(&first.source),
                    first.line,
                    value.setting.file_name()
                ),
            ));
        }
    }
    Ok(values)
}

/// The entries of `table` in the order they were written.
fn in_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// `value` as the text of `setting`, spelled `spelled` on `line`, if it has the right type.
fn value_of(
    setting: Setting,
    spelled: String,
    value: &DeValue<'_>,
    line: usize,
) -> Result<FileValue, Problem> {
    let text = match (setting.kind, value) {
        (SettingType::Text, DeValue::String(text)) => text.to_string(),
        (SettingType::Whole, DeValue::Integer(number)) => decimal(number),
        (kind, _) => {
            let wanted = match kind {
                SettingType::Text => "a quoted string",
                SettingType::Whole => "a whole number",
            };
            return Err((
                line,
                format!("{spelled} takes {wanted}, e.g. {}", setting.example),
            ));
        }
    };
    Ok(FileValue {
        setting,
        value: text,
        source: format!("{SETTINGS_FILE} line {line} ({spelled})"),
        line,
    })
}

/// An integer in decimal; one that is negative or too large as written (the setting's check
/// then refuses it, showing it).
fn decimal(number: &DeInteger<'_>) -> String {
    match u64::from_str_radix(number.as_str(), number.radix()) {
        Ok(n) => n.to_string(),
        Err(_) => number.to_string(),
    }
}

/// The `[table] key` or `key` inside a `starlane.toml line N (…)` source.
fn spelling(source: &str) -> &str {
    source
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(source)
}

/// The line (1-based) the byte `at` of `text` is on.
fn line_of(text: &str, at: usize) -> usize {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The tables, in the order of [`Setting::ALL`], each once.
fn tables() -> impl Iterator<Item = &'static str> {
    Setting::ALL
        .into_iter()
        .enumerate()
        .filter_map(|(at, setting)| {
            let table = setting.table?;
            let first = Setting::ALL[..at]
                .iter()
                .all(|earlier| earlier.table != Some(table));
            first.then_some(table)
        })
}

/// `[control], [http], …`.
fn table_list() -> String {
    tables()
        .map(|table| format!("[{table}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys of the top level (its tables apart), e.g. `machine, stars`.
fn top_level_keys() -> String {
    Setting::ALL
        .into_iter()
        .filter(|setting| setting.table.is_none())
        .map(|setting| setting.key)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_at_top(name: &str) -> String {
    if tables().any(|table| table == name) {
        return format!(
            "'{name}' is a table: write [{name}] on a line of its own, then its settings ({})",
            keys_of(name)
        );
    }
    format!(
        "unknown setting '{name}': the top level takes {} and the tables {}",
        top_level_keys(),
        table_list()
    )
}

fn unknown_in_table(table: &str, key: &str) -> String {
    format!(
        "unknown setting '{key}' in [{table}]: [{table}] takes {}",
        keys_of(table)
    )
}

/// The keys of `table`, e.g. `filter, format`.
fn keys_of(table: &str) -> String {
    Setting::ALL
        .into_iter()
        .filter(|setting| setting.table == Some(table))
        .map(|setting| setting.key)
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_a_table(name: &str) -> String {
    match Setting::ALL
        .into_iter()
        .find(|setting| setting.table.is_none() && setting.key == name)
    {
        Some(setting) => format!(
            "[{name}] is not a table: write {name} = {} at the top level",
            setting.example
        ),
        None => format!("unknown table [{name}]: the tables are {}", table_list()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of `text` as (env var, value, source).
    fn values(text: &str) -> Vec<(&'static str, String, String)> {
        parse(text)
            .unwrap_or_else(|(line, message)| panic!("{text:?}: line {line}: {message}"))
            .into_iter()
            .map(|value| (value.setting.env, value.value, value.source))
            .collect()
    }

    fn value(env: &'static str, value: &str, source: &str) -> (&'static str, String, String) {
        (env, value.to_string(), source.to_string())
    }

    #[test]
    fn settings_live_in_tables_and_keep_their_lines() {
        let text = "\
# A machine at the edge.
machine = \"edge-1\"
stars = 4

[control]
listen = \"127.0.0.1:4343\"

[http]
listen = '0.0.0.0:8080'   # public
wait = 30
max-body = 0x400
read-timeout = 10_000
default-space = \"example.com\"

[cluster]
nats = \"nats://nats-1:4222\"
cosmos = \"prod\"
lease = 2000

[log]
filter = \"warn,cosmic_hyperspace=debug\"
format = \"json\"

[metrics]
listen = \"127.0.0.1:9100\"

[shutdown]
grace = 5

[host]
star-capacity = 4096
wasm-workers = 0
wasm-max-workers = 256
guest-queue = 256

[registry]
url = \"postgres://starlane:pw@db/cosmos\"
";
        assert_eq!(
            values(text),
            vec![
                value(
                    "STARLANE_MACHINE",
                    "edge-1",
                    "starlane.toml line 2 (machine)"
                ),
                value("STARLANE_STARS", "4", "starlane.toml line 3 (stars)"),
                value(
                    "STARLANE_CONTROL",
                    "127.0.0.1:4343",
                    "starlane.toml line 6 ([control] listen)"
                ),
                value(
                    "STARLANE_HTTP",
                    "0.0.0.0:8080",
                    "starlane.toml line 9 ([http] listen)"
                ),
                value(
                    "STARLANE_HTTP_WAIT",
                    "30",
                    "starlane.toml line 10 ([http] wait)"
                ),
                value(
                    "STARLANE_HTTP_MAX_BODY",
                    "1024",
                    "starlane.toml line 11 ([http] max-body)"
                ),
                value(
                    "STARLANE_HTTP_READ_TIMEOUT",
                    "10000",
                    "starlane.toml line 12 ([http] read-timeout)"
                ),
                value(
                    "STARLANE_DEFAULT_SPACE",
                    "example.com",
                    "starlane.toml line 13 ([http] default-space)"
                ),
                value(
                    "STARLANE_NATS",
                    "nats://nats-1:4222",
                    "starlane.toml line 16 ([cluster] nats)"
                ),
                value(
                    "STARLANE_COSMOS",
                    "prod",
                    "starlane.toml line 17 ([cluster] cosmos)"
                ),
                value(
                    "STARLANE_LEASE",
                    "2000",
                    "starlane.toml line 18 ([cluster] lease)"
                ),
                value(
                    "STARLANE_LOG",
                    "warn,cosmic_hyperspace=debug",
                    "starlane.toml line 21 ([log] filter)"
                ),
                value(
                    "STARLANE_LOG_FORMAT",
                    "json",
                    "starlane.toml line 22 ([log] format)"
                ),
                value(
                    "STARLANE_METRICS",
                    "127.0.0.1:9100",
                    "starlane.toml line 25 ([metrics] listen)"
                ),
                value(
                    "STARLANE_GRACE",
                    "5",
                    "starlane.toml line 28 ([shutdown] grace)"
                ),
                value(
                    "STARLANE_STAR_CAPACITY",
                    "4096",
                    "starlane.toml line 31 ([host] star-capacity)"
                ),
                value(
                    "STARLANE_WASM_WORKERS",
                    "0",
                    "starlane.toml line 32 ([host] wasm-workers)"
                ),
                value(
                    "STARLANE_WASM_MAX_WORKERS",
                    "256",
                    "starlane.toml line 33 ([host] wasm-max-workers)"
                ),
                value(
                    "STARLANE_GUEST_QUEUE",
                    "256",
                    "starlane.toml line 34 ([host] guest-queue)"
                ),
                value(
                    "STARLANE_REGISTRY",
                    "postgres://starlane:pw@db/cosmos",
                    "starlane.toml line 37 ([registry] url)"
                ),
            ]
        );
        assert_eq!(parse(""), Ok(Vec::new()));
    }

    #[test]
    fn dotted_keys_and_inline_tables_are_the_same_tables() {
        assert_eq!(
            values("http.listen = \"127.0.0.1:1\"\nlog = { format = \"json\" }\n"),
            vec![
                value(
                    "STARLANE_HTTP",
                    "127.0.0.1:1",
                    "starlane.toml line 1 ([http] listen)"
                ),
                value(
                    "STARLANE_LOG_FORMAT",
                    "json",
                    "starlane.toml line 2 ([log] format)"
                ),
            ]
        );
    }

    #[test]
    fn the_old_flat_keys_are_read_as_they_are_spelled() {
        assert_eq!(
            values("control = \"127.0.0.1:1\"\nhttp-wait = 5\nregistry = 'postgres://db/x'\n"),
            vec![
                value(
                    "STARLANE_CONTROL",
                    "127.0.0.1:1",
                    "starlane.toml line 1 (control)"
                ),
                value(
                    "STARLANE_HTTP_WAIT",
                    "5",
                    "starlane.toml line 2 (http-wait)"
                ),
                value(
                    "STARLANE_REGISTRY",
                    "postgres://db/x",
                    "starlane.toml line 3 (registry)"
                ),
            ]
        );
    }

    #[test]
    fn numbers_out_of_range_are_kept_as_written_for_the_check() {
        assert_eq!(
            values("stars = -3\n[shutdown]\ngrace = 99999999999999999999\n"),
            vec![
                value("STARLANE_STARS", "-3", "starlane.toml line 1 (stars)"),
                value(
                    "STARLANE_GRACE",
                    "99999999999999999999",
                    "starlane.toml line 3 ([shutdown] grace)"
                ),
            ]
        );
    }

    #[test]
    fn everything_else_is_an_error_naming_its_line_and_key() {
        let tables =
            "[control], [http], [registry], [cluster], [log], [metrics], [shutdown], [host]";
        for (text, line, message) in [
            (
                "\ncolour = \"red\"\n",
                2,
                format!(
                    "unknown setting 'colour': the top level takes machine, stars and the tables \
                     {tables}"
                ),
            ),
            (
                "[http]\nlisten = \"127.0.0.1:1\"\nport = 8080\n",
                3,
                "unknown setting 'port' in [http]: [http] takes listen, wait, max-body, \
                 read-timeout, default-space"
                    .to_string(),
            ),
            (
                "[http.tls]\ncert = \"x\"\n",
                1,
                "unknown setting 'tls' in [http]: [http] takes listen, wait, max-body, \
                 read-timeout, default-space"
                    .to_string(),
            ),
            (
                "stars = 2\n\n[colours]\nred = 1\n",
                3,
                format!("unknown table [colours]: the tables are {tables}"),
            ),
            (
                "[machine]\nname = \"edge-1\"\n",
                1,
                "[machine] is not a table: write machine = \"edge-1\" at the top level".to_string(),
            ),
            (
                "log = \"debug\"\n",
                1,
                "'log' is a table: write [log] on a line of its own, then its settings \
                 (filter, format)"
                    .to_string(),
            ),
            (
                "[[http]]\nlisten = \"127.0.0.1:1\"\n",
                1,
                "[[http]] is not used: write [http] once, then its settings".to_string(),
            ),
            (
                "stars = \"2\"\n",
                1,
                "stars takes a whole number, e.g. 4".to_string(),
            ),
            (
                "[shutdown]\ngrace = 1.5\n",
                2,
                "[shutdown] grace takes a whole number, e.g. 10".to_string(),
            ),
            (
                "[control]\nlisten = 4343\n",
                2,
                "[control] listen takes a quoted string, e.g. \"127.0.0.1:4343\"".to_string(),
            ),
            (
                "control = 4343\n",
                1,
                "control takes a quoted string, e.g. \"127.0.0.1:4343\"".to_string(),
            ),
            (
                "[log]\nformat = [\"json\"]\n",
                2,
                "[log] format takes a quoted string, e.g. \"json\"".to_string(),
            ),
            (
                "[metrics]\nlisten = true\n",
                2,
                "[metrics] listen takes a quoted string, e.g. \"127.0.0.1:9100\"".to_string(),
            ),
            (
                "http-wait = 5\n[http]\nwait = 6\n",
                3,
                "[http] wait is set twice: http-wait on line 1 already (keep one, as [http] wait)"
                    .to_string(),
            ),
        ] {
            assert_eq!(parse(text), Err((line, message)), "{text:?}");
        }
    }

    #[test]
    fn toml_syntax_errors_name_their_line() {
        for (text, line) in [
            ("stars = 2\nstars = 3\n", 2),
            ("\n\ncontrol = \"a\n", 3),
            ("stars = 4 5\n", 1),
            ("stars\n", 1),
            ("[http]\n[http]\n", 2),
        ] {
            let (at, message) = parse(text).unwrap_err();
            assert_eq!(at, line, "{text:?}: {message}");
            let written = text.lines().nth(line - 1).unwrap();
            assert!(
                message.ends_with(&format!(", in `{written}`")),
                "{message:?}"
            );
            assert!(!message.contains('\n'), "{message:?}");
        }
        assert_eq!(
            parse("stars = 2\nstars = 3\n"),
            Err((2, "duplicate key, in `stars = 3`".to_string()))
        );
    }
}
