//! `starlane new` and `starlane bundle` as a mechtron author runs them (SPEC §13): the
//! scaffold equals `examples/hello`, builds for wasm32 and packs into a bundle; bad input
//! gets a clear error and leaves nothing behind.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::path::Path;

use tests::{bundle_scaffold, scaffold, starlane, starlane_with, stderr, stdout, workspace_root};

fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        let name = file.name().unwrap().into_owned();
        entries.push((name, bytes));
    }
    entries.sort();
    entries
}

#[test]
fn new_hello_is_examples_hello() {
    let temp = tempfile::tempdir().unwrap();
    scaffold(temp.path(), "hello");
    let made = temp.path().join("hello");
    let example = workspace_root().join("examples/hello");
    for file in [
        "src/lib.rs",
        "bundle/bind/hello.bind",
        "bundle/config/hello.mechtron",
        ".cargo/config.toml",
        ".gitignore",
    ] {
        assert_eq!(
            fs::read_to_string(made.join(file)).unwrap(),
            fs::read_to_string(example.join(file)).unwrap(),
            "{file} differs from examples/hello/{file}: the example must be what `starlane new \
             hello` writes"
        );
    }
    let manifest = fs::read_to_string(made.join("Cargo.toml")).unwrap();
    let sdk = workspace_root()
        .join("cosmic-mechtron")
        .canonicalize()
        .unwrap();
    assert!(manifest.contains("name = \"hello\"\n"), "{manifest}");
    assert!(
        manifest.contains(&format!(
            "cosmic-mechtron = {{ path = \"{}\" }}",
            sdk.display()
        )),
        "{manifest}"
    );
    assert!(manifest.contains("crate-type = [\"cdylib\", \"rlib\"]"));
    assert!(manifest.ends_with("[workspace]\n"), "{manifest}");
}

#[test]
fn new_prints_the_next_steps() {
    let temp = tempfile::tempdir().unwrap();
    let out = starlane(temp.path(), &["new", "my-greeter"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("Created the mechtron crate `my-greeter`"));
    assert!(printed.contains("starlane bundle"));
    assert!(printed.contains("publish ^[ bundle.zip ]-> localhost:repo:my-greeter:1.0.0"));
    assert!(printed.contains("starlane send localhost:my-greeter 'Ext<Hello>' world"));
    let lib = fs::read_to_string(temp.path().join("my-greeter/src/lib.rs")).unwrap();
    assert!(lib.contains("pub struct MyGreeter;"), "{lib}");
}

#[test]
fn new_checks_the_documents_it_writes() {
    let temp = tempfile::tempdir().unwrap();
    scaffold(temp.path(), "a-b");
    let crate_dir = temp.path().join("a-b");
    let out = starlane(
        &crate_dir,
        &[
            "check",
            "bundle/bind/a-b.bind",
            "bundle/config/a-b.mechtron",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("+name=a-b;"));
    // `AB` would be named `ab` by #[mechtron]: the scaffold says the name instead.
    let lib = fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#[mechtron(name = \"a-b\")]\n#[derive(Debug, Default)]\npub struct AB;"));
}

#[test]
fn new_refuses_bad_names_and_leaves_nothing() {
    let temp = tempfile::tempdir().unwrap();
    for (name, says) in [
        ("Hello", "is not a valid mechtron name"),
        ("my_app", "is not a valid mechtron name"),
        ("hello-", "is not a valid mechtron name"),
        ("fn", "is a Rust keyword"),
        ("test", "is reserved"),
        ("ctx", "would name the mechtron type `Ctx`"),
    ] {
        let out = starlane(temp.path(), &["new", name]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stderr(&out).contains(says), "{name}: {}", stderr(&out));
    }
    assert_eq!(fs::read_dir(temp.path()).unwrap().count(), 0);
}

#[test]
fn new_refuses_an_existing_directory() {
    let temp = tempfile::tempdir().unwrap();
    fs::create_dir(temp.path().join("hello")).unwrap();
    fs::write(temp.path().join("hello/mine.txt"), "keep me").unwrap();
    let out = starlane(temp.path(), &["new", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let left: Vec<_> = fs::read_dir(temp.path().join("hello")).unwrap().collect();
    assert_eq!(left.len(), 1, "the existing directory is untouched");
}

#[test]
fn new_refuses_an_sdk_path_that_is_not_the_sdk() {
    let temp = tempfile::tempdir().unwrap();
    let not_sdk = workspace_root().join("cosmic-space");
    let missing = temp.path().join("nowhere");
    for (sdk, says) in [
        (not_sdk.as_path(), "is not the guest SDK"),
        (temp.path(), "has no Cargo.toml"),
        (missing.as_path(), "does not exist"),
    ] {
        let out = starlane(
            temp.path(),
            &["new", "hello", "--sdk-path", &sdk.display().to_string()],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    assert!(!temp.path().join("hello").exists());
}

#[test]
fn new_takes_the_sdk_and_the_parent_directory_from_flags() {
    let temp = tempfile::tempdir().unwrap();
    let out = starlane(
        &workspace_root(),
        &[
            "new",
            "hello",
            "--sdk-path",
            "cosmic-mechtron",
            "--dir",
            &temp.path().join("crates").display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = fs::read_to_string(temp.path().join("crates/hello/Cargo.toml")).unwrap();
    let sdk = workspace_root()
        .join("cosmic-mechtron")
        .canonicalize()
        .unwrap();
    assert!(
        manifest.contains(&format!("path = \"{}\"", sdk.display())),
        "a relative --sdk-path is written absolute: {manifest}"
    );
}

#[test]
fn bundle_packs_a_directory_without_a_cargo_toml_as_it_is() {
    let temp = tempfile::tempdir().unwrap();
    fs::create_dir_all(temp.path().join("html")).unwrap();
    fs::write(temp.path().join("html/index.html"), "<h1>hi</h1>").unwrap();
    let out = starlane(temp.path(), &["bundle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let entries = zip_entries(&temp.path().join("bundle.zip"));
    assert_eq!(
        entries,
        [("html/index.html".to_string(), b"<h1>hi</h1>".to_vec())]
    );
}

#[test]
fn new_then_bundle_makes_a_bundle_with_the_wasm() {
    let temp = tempfile::tempdir().unwrap();
    scaffold(temp.path(), "my-greeter");
    let crate_dir = temp.path().join("my-greeter");
    let out = bundle_scaffold(&crate_dir);
    assert!(
        out.status.success(),
        "starlane bundle: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("bundle/wasm/my-greeter.wasm"));
    let entries = zip_entries(&crate_dir.join("bundle.zip"));
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bind/my-greeter.bind",
            "config/my-greeter.mechtron",
            "wasm/my-greeter.wasm"
        ]
    );
    let wasm = &entries[2].1;
    assert_eq!(&wasm[..4], b"\0asm", "the bundled wasm is a wasm module");
    assert_eq!(
        wasm,
        &fs::read(crate_dir.join("bundle/wasm/my-greeter.wasm")).unwrap()
    );
}

/// A crate from `starlane new` uses `uuid` (v4) and `rand` on wasm32 with nothing but their
/// dependency lines: a plain `cargo build` takes the getrandom flag from the scaffold's
/// `.cargo/config.toml`, `starlane bundle` finds it there and adds nothing (so its build is
/// the same, already fresh), and the wasm links the SDK's getrandom backend instead of
/// importing JavaScript.
#[test]
fn a_scaffolded_crate_uses_uuid_and_rand_on_wasm() {
    let temp = tempfile::tempdir().unwrap();
    let dir = scaffold(temp.path(), "dice");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap().replace(
        "[dependencies]\n",
        "[dependencies]\nuuid = { version = \"1\", features = [\"v4\"] }\nrand = \"0.10\"\n",
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap().replace(
        "    #[route(\"Ext<Hello>\")]",
        "    #[route(\"Ext<Roll>\")]\n    fn roll(&mut self) -> String {\n        \
         format!(\"{} {}\", uuid::Uuid::new_v4(), rand::random::<u64>())\n    }\n\n    \
         #[route(\"Ext<Hello>\")]",
    );
    assert!(lib.contains("Ext<Roll>"), "{lib}");
    fs::write(dir.join("src/lib.rs"), lib).unwrap();

    let target = tests::target_root().join("scaffold");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo build: {}", stderr(&out));
    let wasm = fs::read(target.join("wasm32-unknown-unknown/release/dice.wasm")).unwrap();
    let holds = |needle: &[u8]| wasm.windows(needle.len()).any(|w| w == needle);
    assert!(
        holds(b"__getrandom_v03_custom"),
        "the SDK's getrandom backend is linked in"
    );
    assert!(!holds(b"__wbindgen"), "nothing is imported from JavaScript");

    let out = bundle_scaffold(&dir);
    assert!(out.status.success(), "starlane bundle: {}", stderr(&out));
    assert!(
        !stderr(&out).contains("Compiling"),
        "bundle built with other flags than the plain build: {}",
        stderr(&out)
    );
    assert_eq!(fs::read(dir.join("bundle/wasm/dice.wasm")).unwrap(), wasm);
}

#[test]
fn bundle_reports_a_failed_build_and_writes_no_zip() {
    let temp = tempfile::tempdir().unwrap();
    scaffold(temp.path(), "broken");
    let crate_dir = temp.path().join("broken");
    fs::write(crate_dir.join("src/lib.rs"), "this is not rust\n").unwrap();
    let out = bundle_scaffold(&crate_dir);
    assert_eq!(out.status.code(), Some(1));
    let said = stderr(&out);
    assert!(
        said.contains("error: cargo build of broken for wasm32-unknown-unknown failed"),
        "{said}"
    );
    assert!(said.contains("cargo's output is above"), "{said}");
    assert!(
        said.contains("expected one of"),
        "cargo's own diagnostics reach the user: {said}"
    );
    assert!(!crate_dir.join("bundle.zip").exists());
}

#[test]
fn bundle_without_cargo_says_what_to_install() {
    let temp = tempfile::tempdir().unwrap();
    scaffold(temp.path(), "hello");
    let missing = temp.path().join("no-such-cargo");
    let out = starlane_with(
        &temp.path().join("hello"),
        &["bundle"],
        &[("CARGO", Some(&missing.display().to_string()))],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cargo not found"), "{}", stderr(&out));
    assert!(stderr(&out).contains("https://rustup.rs"));
    assert!(!temp.path().join("hello/bundle.zip").exists());
}

#[test]
fn bundle_of_a_crate_without_a_cdylib_says_so() {
    let temp = tempfile::tempdir().unwrap();
    fs::create_dir(temp.path().join("src")).unwrap();
    fs::write(
        temp.path().join("Cargo.toml"),
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    fs::write(temp.path().join("src/lib.rs"), "").unwrap();
    let out = starlane(temp.path(), &["bundle"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no cdylib library"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[test]
fn bundle_without_the_wasm_target_says_how_to_add_it() {
    use std::os::unix::fs::PermissionsExt;

    let temp = tempfile::tempdir().unwrap();
    scaffold(temp.path(), "hello");
    // A toolchain whose wasm32 standard library is missing: its target-libdir does not exist.
    let rustc = temp.path().join("rustc-without-wasm");
    fs::write(
        &rustc,
        format!("#!/bin/sh\necho {}\n", temp.path().join("absent").display()),
    )
    .unwrap();
    fs::set_permissions(&rustc, fs::Permissions::from_mode(0o755)).unwrap();
    let out = starlane_with(
        &temp.path().join("hello"),
        &["bundle"],
        &[("RUSTC", Some(&rustc.display().to_string()))],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("rustup target add wasm32-unknown-unknown"),
        "{}",
        stderr(&out)
    );
}
