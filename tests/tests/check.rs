//! `starlane check` as a user runs it: documents in, canonical form or a located error out.

#![allow(clippy::unwrap_used)]

use std::fs;

use tests::{starlane, workspace_root};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_example_documents_check_clean() {
    let root = workspace_root();
    let out = starlane(
        &root,
        &[
            "check",
            "examples/documents/setup.script",
            "examples/documents/localhost.bind",
            "examples/documents/hello.mechtron",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("examples/documents/setup.script: ok"));
    assert!(printed.contains("create localhost:app:worker-%<Mechtron>"));
    assert!(printed.contains("Route<Http<Get>>/static/(?P<path>.*)"));
    assert!(printed.contains("+memory=64MiB;"));
}

#[test]
fn a_broken_script_names_its_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("starlane-check-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("broken.script"),
        "create localhost<Space>;\n\ncreate localhost:app<Spaceship>;\n",
    )
    .unwrap();
    let out = starlane(&dir, &["check", "broken.script"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("unknown kind 'Spaceship'"), "{err}");
    assert!(err.contains("--> broken.script:3:22"), "{err}");
    assert!(
        err.contains("3 | create localhost:app<Spaceship>;"),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn expressions_are_checked_by_grammar() {
    let root = workspace_root();
    let ok = starlane(
        &root,
        &[
            "check",
            "--expr",
            "localhost+:**<Mechtron>",
            "--as",
            "selector",
        ],
    );
    assert!(ok.status.success());
    assert_eq!(stdout(&ok), "localhost+:**<Mechtron>\n");

    let bad = starlane(
        &root,
        &["check", "--expr", "localhost:Base", "--as", "point"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("1 | localhost:Base\n  |           ^ found 'B'"));
}

#[test]
fn an_unknown_extension_is_an_error_not_a_guess() {
    let root = workspace_root();
    let out = starlane(&root, &["check", "README.md"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot tell what '.md' files hold"));
}
