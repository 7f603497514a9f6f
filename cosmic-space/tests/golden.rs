//! Golden tests for every grammar of `cosmic-space`.
//!
//! `tests/golden/<grammar>/` holds inputs and, beside each, the expected result:
//! - `NAME.lines`: one case per line (blank lines and lines starting with `//` are skipped);
//!   `NAME.lines.out` holds one block per case.
//! - any other file `NAME.EXT`: the whole file is one case; `NAME.EXT.out` holds its block.
//!
//! A block is `ok: <canonical form>` followed by the AST (`{:#?}`), or `error:` followed by
//! the rendered error. Run with `BLESS=1` to (re)write the `.out` files after checking them.

use std::fmt::Debug;
use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cosmic_space::*;

/// Parses `input` as `T`; checks the canonical form parses back to the same value.
fn render<T>(input: &str) -> String
where
    T: FromStr<Err = ParseError> + Display + Debug + PartialEq,
{
    match input.parse::<T>() {
        Ok(value) => {
            let canonical = value.to_string();
            let again = canonical
                .parse::<T>()
                .unwrap_or_else(|e| panic!("canonical form {canonical:?} does not parse:\n{e}"));
            assert_eq!(
                again, value,
                "canonical form {canonical:?} parses differently"
            );
            format!("ok: {canonical}\n{value:#?}\n")
        }
        Err(err) => format!("error:\n{err}\n"),
    }
}

/// The grammar each folder holds.
fn parse_as(grammar: &str, input: &str) -> String {
    match grammar {
        "point" => render::<Point>(input),
        "point-var" => render::<PointVar>(input),
        "surface" => render::<Surface>(input),
        "kind" => render::<Kind>(input),
        "kind-selector" => render::<KindSelector>(input),
        "selector" => render::<Selector>(input),
        "method" => render::<Method>(input),
        "method-pattern" => render::<MethodPattern>(input),
        "grant" => render::<GrantKind>(input),
        "command" => render::<Command>(input),
        "script" => render::<Script>(input),
        "bind" => render::<Bind>(input),
        "mechtron" => render::<MechtronConfig>(input),
        "status" => render::<Status>(input),
        other => panic!("tests/golden/{other}: no parser is registered for this folder"),
    }
}

fn cases(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "lines") {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("//"))
            .map(|l| l.trim_end().to_string())
            .collect()
    } else {
        vec![text]
    }
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".out"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden() {
    // The package directory cargo names when it runs the test, rather than the one compiled
    // in: a target directory shared by two checkouts may run a binary the other one built.
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = package.join("tests/golden");
    let bless = std::env::var_os("BLESS").is_some();
    let mut grammars: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/golden exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    grammars.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in grammars {
        let grammar = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for input in inputs(&dir) {
            let mut actual = String::new();
            let per_line = input.extension().is_some_and(|e| e == "lines");
            for case in cases(&input) {
                count += 1;
                if per_line {
                    actual.push_str(&format!("=== {case}\n"));
                }
                actual.push_str(&parse_as(&grammar, &case));
            }
            let out = PathBuf::from(format!("{}.out", input.display()));
            if bless {
                fs::write(&out, &actual).expect("write .out");
                continue;
            }
            match fs::read_to_string(&out) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{}: output differs\n--- expected\n{expected}\n--- actual\n{actual}",
                    input.display()
                )),
                Err(_) => failures.push(format!(
                    "{}: no {} (run with BLESS=1 and review it)",
                    input.display(),
                    out.display()
                )),
            }
        }
    }
    assert!(count > 0, "no golden cases found under {}", root.display());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
