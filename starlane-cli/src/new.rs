//! `starlane new NAME`: scaffold a mechtron crate that builds as-is (SPEC §13, §11.1, §11.4).
//!
//! ```text
//! NAME/
//!   Cargo.toml                  package NAME, cdylib + rlib, the SDK by path, small-wasm release profile
//!   src/lib.rs                  the NAME mechtron: Ext<Hello> → "Goodbye, BODY!", and a native test
//!   bundle/bind/NAME.bind       how waves reach it
//!   bundle/config/NAME.mechtron the wasm it runs (${bundle}:/wasm/NAME.wasm) and its type (NAME)
//!   .cargo/config.toml          wasm32 builds give getrandom the SDK's backend (uuid, rand work)
//!   .gitignore
//! ```
//!
//! `starlane bundle` then builds the wasm into `bundle/wasm/NAME.wasm` and zips `bundle/`.
//! The SDK dependency points at the `cosmic-mechtron` crate this CLI was built from (a path
//! while the crates are unpublished), or at `--sdk-path`. `examples/hello` is exactly what
//! `starlane new hello` writes (a test keeps them equal).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;

/// The SDK crate next to this CLI's sources when it was built.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../cosmic-mechtron");

/// The SDK's package name, which `--sdk-path` must point at.
const SDK_PACKAGE: &str = "cosmic-mechtron";

/// Arguments of `starlane new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The crate's name in skewer case (e.g. `hello`, `my-greeter`): the package, the mechtron
    /// type and its bundle files are named after it.
    name: String,

    /// The guest SDK crate (`cosmic-mechtron`) to depend on (default: the one this starlane was
    /// built from).
    #[arg(long, value_name = "PATH")]
    sdk_path: Option<PathBuf>,

    /// The directory to create the crate in (default: the current directory).
    #[arg(long, value_name = "PARENT")]
    dir: Option<PathBuf>,
}

/// Runs `starlane new`.
pub fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.as_str();
    check_name(name)?;
    let sdk = sdk_dir(args.sdk_path.as_deref())?;
    let parent = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let dir = parent.join(name);
    if dir.symlink_metadata().is_ok() {
        bail!(
            "{} already exists: choose another name, or another place with --dir",
            dir.display()
        );
    }
    let files = scaffold(name, &sdk)?;
    write(&dir, &files)?;
    println!("Created the mechtron crate `{name}` in {}", dir.display());
    println!("(guest SDK: {})", sdk.display());
    println!("{}", next_steps(name, &dir));
    Ok(ExitCode::SUCCESS)
}

/// The files of a new crate `name` depending on the SDK at `sdk`: (path relative to the
/// crate, contents).
pub(crate) fn scaffold(name: &str, sdk: &Path) -> anyhow::Result<Vec<(String, String)>> {
    Ok(vec![
        ("Cargo.toml".to_string(), cargo_toml(name, sdk)?),
        ("src/lib.rs".to_string(), lib_rs(name)),
        (format!("bundle/bind/{name}.bind"), bind_document(name)),
        (
            format!("bundle/config/{name}.mechtron"),
            mechtron_document(name),
        ),
        (".cargo/config.toml".to_string(), CARGO_CONFIG.to_string()),
        (
            ".gitignore".to_string(),
            "/target\n/bundle.zip\n/bundle/wasm/\n".to_string(),
        ),
    ])
}

/// `.cargo/config.toml`: a plain `cargo build --target wasm32-unknown-unknown` builds the
/// same wasm as `starlane bundle`, whose flag this is.
const CARGO_CONFIG: &str = r#"# Inside a mechtron, getrandom (under `uuid`, `rand` and others) takes its random bytes from the
# host through the guest SDK. `starlane bundle` passes this flag itself; it is here so that a
# plain `cargo build --release --target wasm32-unknown-unknown` builds the same wasm.
[target.wasm32-unknown-unknown]
rustflags = ["--cfg", 'getrandom_backend="custom"']
"#;

fn cargo_toml(name: &str, sdk: &Path) -> anyhow::Result<String> {
    let sdk = sdk
        .to_str()
        .ok_or_else(|| anyhow!("the SDK path {} is not valid UTF-8", sdk.display()))?;
    Ok(format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the wasm `starlane bundle` ships; rlib: for native `cargo test`.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The Starlane guest SDK, by path while its crates are unpublished.
cosmic-mechtron = {{ path = {sdk} }}

# `starlane bundle` builds this profile for wasm32-unknown-unknown: a small wasm.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A workspace of its own, so the crate builds wherever it is created.
[workspace]
"#,
        sdk = toml_string(sdk),
    ))
}

fn lib_rs(name: &str) -> String {
    let ty = camel(name);
    let attribute = if cosmic_space::mechtron_type_name(&ty) == name {
        "#[mechtron]".to_string()
    } else {
        // The type's own name would not read back as NAME (`a-b` → `AB` → `ab`).
        format!("#[mechtron(name = \"{name}\")]")
    };
    format!(
        r#"//! The `{name}` mechtron: answers `Ext<Hello>` with a greeting.

use cosmic_mechtron::prelude::*;

{attribute}
#[derive(Debug, Default)]
pub struct {ty};

#[handlers]
impl {ty} {{
    #[route("Ext<Hello>")]
    fn hello(&mut self, ctx: &mut Ctx, name: String) -> String {{
        ctx.info(format!("greeting {{name}}"));
        format!("Goodbye, {{name}}!")
    }}
}}

#[cfg(test)]
mod tests {{
    use cosmic_mechtron::testing::TestMechtron;

    use super::*;

    #[test]
    fn says_goodbye() -> Result<()> {{
        let mut mechtron = TestMechtron::<{ty}>::new()?;
        let answer = mechtron.ping("Ext<Hello>", "world");
        assert_eq!(answer.body, Substance::from("Goodbye, world!"));
        assert_eq!(
            mechtron.logs(),
            [(LogLevel::Info, "greeting world".to_string())]
        );
        Ok(())
    }}
}}
"#
    )
}

fn bind_document(name: &str) -> String {
    format!(
        r#"# How waves reach the {name} mechtron. Give it this bind when you create it, e.g.
#   create localhost:{name}<Mechtron>{{
#     +config=localhost:repo:{name}:1.0.0:/config/{name}.mechtron,
#     +bind=localhost:repo:{name}:1.0.0:/bind/{name}.bind }};
Bind(version=1.0.0) {{
  Route<Ext<Hello>> -[ Text ]-> (()) => &;
}}
"#
    )
}

fn mechtron_document(name: &str) -> String {
    format!(
        r#"# The {name} mechtron: the wasm it runs and the mechtron type inside it. `${{bundle}}` is the
# bundle this document is published in. Optional: Limits {{ +fuel=1000000000; +memory=64MiB; }}
Mechtron(version=1.0.0) {{
  Wasm {{
    +bin=${{bundle}}:/wasm/{name}.wasm;
    +name={name};
  }}
}}
"#
    )
}

fn next_steps(name: &str, dir: &Path) -> String {
    let bundle = format!("localhost:repo:{name}:1.0.0");
    let mut steps = String::from("\nNext steps:\n");
    let _ = writeln!(steps, "  cd {}", dir.display());
    let _ = writeln!(steps, "  cargo test          # run the mechtron natively");
    let _ = writeln!(
        steps,
        "  starlane bundle     # build the wasm and write bundle.zip"
    );
    let _ = writeln!(steps, "  # then, with `starlane serve` running:");
    let _ = writeln!(
        steps,
        "  starlane exec 'create? localhost<Space>; create? localhost:repo<Repo>; \
         publish ^[ bundle.zip ]-> {bundle}'"
    );
    let _ = writeln!(
        steps,
        "  starlane exec 'create localhost:{name}<Mechtron>{{ \
         +config={bundle}:/config/{name}.mechtron, +bind={bundle}:/bind/{name}.bind }}'"
    );
    let _ = write!(steps, "  starlane send localhost:{name} 'Ext<Hello>' world");
    steps
}

/// Writes `files` into the new directory `dir`; on failure removes it again, so nothing
/// half-made is left behind.
fn write(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = files.iter().try_for_each(|(path, contents)| {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    result
}

/// The SDK directory, canonical: `given`, else the one this CLI was built from; refused
/// unless it holds the `cosmic-mechtron` package.
fn sdk_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (path, hint) = match given {
        Some(path) => (path.to_path_buf(), ""),
        None => (
            PathBuf::from(BUILT_SDK),
            " (the guest SDK this starlane was built from has moved: pass \
             --sdk-path PATH/TO/cosmic-mechtron)",
        ),
    };
    let sdk = path
        .canonicalize()
        .with_context(|| format!("the SDK path {} does not exist{hint}", path.display()))?;
    let manifest = sdk.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).map_err(|_| {
        anyhow!(
            "{} is not the guest SDK: it has no Cargo.toml (expected the {SDK_PACKAGE} crate){hint}",
            sdk.display()
        )
    })?;
    if package_name(&text).as_deref() != Some(SDK_PACKAGE) {
        bail!(
            "{} is not the guest SDK: its Cargo.toml is not the {SDK_PACKAGE} package{hint}",
            sdk.display()
        );
    }
    Ok(sdk)
}

/// The `name` of the `[package]` table of a Cargo.toml, read line by line (enough for the
/// manifests cargo writes and people keep).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            let value = value.trim();
            return value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string);
        }
    }
    None
}

/// Refuses a name that is not skewer case, or that cargo refuses as a crate name, or whose
/// type name would shadow a name the scaffold uses.
fn check_name(name: &str) -> anyhow::Result<()> {
    let skewer = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !skewer {
        bail!(
            "'{name}' is not a valid mechtron name: use skewer case, lower-case letters and \
             digits with single '-' between words, beginning with a letter (e.g. hello, \
             my-greeter)"
        );
    }
    if RUST_KEYWORDS.contains(&name) {
        bail!("'{name}' is a Rust keyword, which cargo refuses as a crate name");
    }
    if RESERVED.contains(&name) {
        bail!(
            "'{name}' is reserved: cargo refuses it as a crate name (a standard library crate, \
             a build directory or a Windows device name)"
        );
    }
    let ty = camel(name);
    if TAKEN_TYPE_NAMES.contains(&ty.as_str()) {
        bail!(
            "'{name}' would name the mechtron type `{ty}`, which the generated code already uses \
             (from the SDK's prelude or Rust's): choose another name"
        );
    }
    Ok(())
}

/// Rust keywords, strict and reserved (cargo refuses them as crate names).
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names cargo refuses: standard library crates, its build directories, Windows devices.
const RESERVED: &[&str] = &[
    "alloc",
    "core",
    "proc-macro",
    "std",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
];

/// Type names the generated `lib.rs` sees through `cosmic_mechtron::prelude::*`, the Rust
/// prelude or its test module; a mechtron type of the same name would shadow them.
const TAKEN_TYPE_NAMES: &[&str] = &[
    "Agent",
    "Ctx",
    "Debug",
    "Default",
    "Details",
    "DirectedCore",
    "Error",
    "FromWave",
    "HttpMethod",
    "HttpRequest",
    "HttpResponse",
    "IntoReflected",
    "Json",
    "Kind",
    "LogLevel",
    "Logger",
    "Method",
    "Point",
    "Pong",
    "ReflectedCore",
    "Result",
    "StatusCode",
    "String",
    "Substance",
    "Surface",
    "TestMechtron",
];

/// `my-greeter` → `MyGreeter`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `text` as a TOML basic string (quoted, with `\` and `"` and control characters escaped).
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_skewer_case_crate_names() {
        for good in ["hello", "my-greeter", "hello2", "a-b", "web-2-go"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "my_app",
            "2fast",
            "-hello",
            "hello-",
            "a--b",
            "héllo",
            "hello world",
        ] {
            let error = check_name(bad).unwrap_err().to_string();
            assert!(
                error.contains("is not a valid mechtron name"),
                "{bad}: {error}"
            );
        }
        let refusal = |name: &str| check_name(name).unwrap_err().to_string();
        assert!(refusal("fn").contains("keyword"));
        assert!(refusal("test").contains("reserved"));
        assert!(refusal("proc-macro").contains("reserved"));
        assert!(refusal("ctx").contains("`Ctx`"));
        assert!(check_name("log-level").is_err());
    }

    #[test]
    fn type_names_read_back_as_the_name_or_say_it() {
        assert_eq!(camel("hello"), "Hello");
        assert_eq!(camel("my-greeter"), "MyGreeter");
        assert_eq!(camel("web-2-go"), "Web2Go");
        assert!(lib_rs("my-greeter").contains("\n#[mechtron]\n"));
        assert!(lib_rs("my-greeter").contains("pub struct MyGreeter;"));
        assert!(lib_rs("a-b").contains("#[mechtron(name = \"a-b\")]\n"));
        assert!(lib_rs("web-2-go").contains("#[mechtron(name = \"web-2-go\")]\n"));
    }

    #[test]
    fn the_manifest_depends_on_the_sdk_by_an_escaped_path() {
        let toml = cargo_toml("hello", Path::new("/opt/star \"lane\"\\sdk")).unwrap();
        assert!(toml.contains("name = \"hello\"\n"));
        assert!(toml.contains(r#"cosmic-mechtron = { path = "/opt/star \"lane\"\\sdk" }"#));
        assert!(toml.contains("crate-type = [\"cdylib\", \"rlib\"]"));
        assert!(toml.ends_with("[workspace]\n"));
    }

    #[test]
    fn package_names_are_read_from_the_package_table() {
        assert_eq!(
            package_name("[package]\nname = \"cosmic-mechtron\"\n").as_deref(),
            Some("cosmic-mechtron")
        );
        assert_eq!(
            package_name("[dependencies]\nname = \"x\"\n[package]\nversion = \"1\"\nname=\"y\"")
                .as_deref(),
            Some("y")
        );
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }

    #[test]
    fn the_built_sdk_is_found_and_other_crates_are_refused() {
        let sdk = sdk_dir(None).unwrap();
        assert!(sdk.ends_with("cosmic-mechtron"));
        let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
        let error = sdk_dir(Some(cli)).unwrap_err().to_string();
        assert!(
            error.contains("is not the cosmic-mechtron package"),
            "{error}"
        );
        let error = sdk_dir(Some(&cli.join("src"))).unwrap_err().to_string();
        assert!(error.contains("has no Cargo.toml"), "{error}");
        let error = sdk_dir(Some(&cli.join("no-such-dir")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
    }

    #[test]
    fn the_documents_name_the_wasm_and_the_type() {
        let mechtron = mechtron_document("my-greeter");
        assert!(mechtron.contains("+bin=${bundle}:/wasm/my-greeter.wasm;\n"));
        assert!(mechtron.contains("+name=my-greeter;\n"));
        assert!(bind_document("my-greeter").contains("Route<Ext<Hello>>"));
        let files = scaffold("hello", Path::new("/sdk")).unwrap();
        let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Cargo.toml",
                "src/lib.rs",
                "bundle/bind/hello.bind",
                "bundle/config/hello.mechtron",
                ".cargo/config.toml",
                ".gitignore"
            ]
        );
        // The flag `starlane bundle` passes, for wasm32 builds only (native tests keep the
        // operating system's randomness).
        assert!(CARGO_CONFIG.contains(
            "[target.wasm32-unknown-unknown]\nrustflags = [\"--cfg\", 'getrandom_backend=\"custom\"']\n"
        ));
    }
}
