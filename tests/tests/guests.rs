//! The guest fixtures as `build.rs` builds them: real wasm modules with the ABI's exports and
//! imports (SPEC §11.3), and the documents of the fixtures bundle.

#![allow(clippy::unwrap_used)]

use std::io::Read;

use tests::{
    FIXTURE_CONFIGS, fixtures_bundle, guest_wasm, starlane, stderr, stdout, workspace_root,
};

/// The exports and imports (`module.field`) of a wasm module, read from its export and import
/// sections (no wasm tooling needed).
struct Interface {
    exports: Vec<String>,
    imports: Vec<String>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.bytes[self.at];
        self.at += 1;
        byte
    }

    fn leb(&mut self) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = self.byte();
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }

    fn name(&mut self) -> String {
        let len = self.leb() as usize;
        let name = String::from_utf8(self.bytes[self.at..self.at + len].to_vec()).unwrap();
        self.at += len;
        name
    }

    fn limits(&mut self) {
        let flags = self.byte();
        self.leb();
        if flags & 1 != 0 {
            self.leb();
        }
    }
}

fn interface(wasm: &[u8]) -> Interface {
    assert_eq!(
        &wasm[..8],
        b"\0asm\x01\0\0\0",
        "not a wasm module, version 1"
    );
    let mut reader = Reader { bytes: wasm, at: 8 };
    let mut interface = Interface {
        exports: Vec::new(),
        imports: Vec::new(),
    };
    while reader.at < wasm.len() {
        let id = reader.byte();
        let size = reader.leb() as usize;
        let end = reader.at + size;
        match id {
            2 => {
                for _ in 0..reader.leb() {
                    let module = reader.name();
                    let field = reader.name();
                    match reader.byte() {
                        0 => drop(reader.leb()),
                        1 => {
                            reader.byte();
                            reader.limits();
                        }
                        2 => reader.limits(),
                        _ => {
                            reader.byte();
                            reader.byte();
                        }
                    }
                    interface.imports.push(format!("{module}.{field}"));
                }
            }
            7 => {
                for _ in 0..reader.leb() {
                    let name = reader.name();
                    reader.byte();
                    reader.leb();
                    interface.exports.push(name);
                }
            }
            _ => {}
        }
        reader.at = end;
    }
    interface
}

const ABI_EXPORTS: [&str; 6] = [
    "memory",
    "mechtron_abi_version",
    "mechtron_alloc",
    "mechtron_dealloc",
    "mechtron_init",
    "mechtron_handle",
];

#[test]
fn the_fixtures_wasm_exports_the_abi_and_the_benchmark_floor() {
    let wasm = std::fs::read(guest_wasm("guest_fixtures")).unwrap();
    let interface = interface(&wasm);
    for export in ABI_EXPORTS.iter().chain(&["bench_empty"]) {
        assert!(
            interface.exports.iter().any(|e| e == export),
            "guest_fixtures.wasm does not export {export}: {:?}",
            interface.exports
        );
    }
    // The fixtures use `uuid` and `rand`: getrandom's custom backend, the SDK's, is linked
    // in (a cdylib exports every unmangled symbol), and it asks the host, not JavaScript.
    assert!(
        interface
            .exports
            .iter()
            .any(|e| e == "__getrandom_v03_custom"),
        "{:?}",
        interface.exports
    );
    let mut imports = interface.imports.clone();
    imports.sort();
    assert_eq!(
        imports,
        [
            "cosmic.host_log",
            "cosmic.host_now",
            "cosmic.host_random",
            "cosmic.host_send"
        ]
    );
}

#[test]
fn the_malformed_wasm_exports_the_abi_by_hand() {
    let wasm = std::fs::read(guest_wasm("guest_malformed")).unwrap();
    let interface = interface(&wasm);
    for export in ABI_EXPORTS {
        assert!(
            interface.exports.iter().any(|e| e == export),
            "guest_malformed.wasm does not export {export}: {:?}",
            interface.exports
        );
    }
    let mut imports = interface.imports.clone();
    imports.sort();
    assert_eq!(imports, ["cosmic.host_log", "cosmic.host_send"]);
}

#[test]
fn the_fixture_documents_check_clean() {
    let dir = workspace_root().join("tests/guests/bundle/config");
    let files: Vec<String> = FIXTURE_CONFIGS
        .iter()
        .map(|(name, _)| dir.join(name).display().to_string())
        .collect();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = starlane(&workspace_root(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in &files {
        assert!(
            stdout(&out).contains(&format!("{file}: ok")),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn the_fixtures_bundle_holds_both_wasms_and_every_document() {
    let bundle = fixtures_bundle();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bundle)).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config/counter.mechtron",
            "config/hello.mechtron",
            "config/malformed.mechtron",
            "config/pinger.mechtron",
            "config/slowpoke.mechtron",
            "config/troublemaker.mechtron",
            "wasm/guest_fixtures.wasm",
            "wasm/guest_malformed.wasm",
        ]
    );
    let mut wasm = Vec::new();
    archive
        .by_name("wasm/guest_malformed.wasm")
        .unwrap()
        .read_to_end(&mut wasm)
        .unwrap();
    assert_eq!(wasm, std::fs::read(guest_wasm("guest_malformed")).unwrap());
}
