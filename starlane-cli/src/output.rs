//! How answers are printed: for people (a point, a table of stubs, properties, raw bytes,
//! text) or, with `--json`, as one JSON object per answer per line.
//!
//! Results go to standard output, errors (`error: <status> <message>`) to standard error, so
//! `starlane exec 'read …' > file` (and `starlane send … > file`) writes the file's bytes and
//! nothing else.

use std::io::{self, Write};

use cosmic_space::{
    Details, Headers, Properties, PropertyChange, ReflectedCore, Stub, Substance, wire,
};
use serde_json::{Map, Value, json};

/// What produced an answer, for JSON output and error messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The script line of the command, when it came from a script.
    pub line: Option<usize>,
    /// The command, as sent.
    pub command: Option<&'a str>,
}

/// Prints answers to `out` and errors to `err`.
#[derive(Debug)]
pub struct Printer<O, E> {
    out: O,
    err: E,
    json: bool,
}

impl<O: Write, E: Write> Printer<O, E> {
    /// A printer for people, or for machines when `json` is set.
    pub fn new(out: O, err: E, json: bool) -> Self {
        Printer { out, err, json }
    }

    /// Prints one answer; returns whether it succeeded (status below 400).
    pub fn answer(&mut self, origin: Origin<'_>, core: &ReflectedCore) -> io::Result<bool> {
        self.answer_with(origin, core, false)
    }

    /// Prints one answer, with its headers in JSON when `headers` is set.
    fn answer_with(
        &mut self,
        origin: Origin<'_>,
        core: &ReflectedCore,
        headers: bool,
    ) -> io::Result<bool> {
        let ok = succeeded(core);
        if self.json {
            let mut object = Map::new();
            if let Some(line) = origin.line {
                object.insert("line".into(), json!(line));
            }
            if let Some(command) = origin.command {
                object.insert("command".into(), json!(command));
            }
            object.insert("status".into(), json!(core.status.as_u16()));
            object.insert("ok".into(), json!(ok));
            if headers {
                object.insert("headers".into(), headers_object(&core.headers));
            }
            if ok {
                object.insert("body".into(), substance_json(&core.body));
            } else {
                object.insert("error".into(), json!(error_message(core)));
            }
            writeln!(self.out, "{}", Value::Object(object))?;
        } else if ok {
            render(&core.body, &mut self.out)?;
        }
        if !ok {
            let line = origin
                .line
                .map(|line| format!("line {line}: "))
                .unwrap_or_default();
            writeln!(
                self.err,
                "error: {line}{} {}",
                core.status.as_u16(),
                error_message(core)
            )?;
        }
        self.out.flush()?;
        Ok(ok)
    }

    /// Prints a Pong for `starlane send`: its status line, then its body. With `include`,
    /// as `curl -i` does: the status line, a `name: value` line per header and a blank line
    /// before the body (in JSON, a `headers` object). Without it, the status line of a body
    /// of bytes goes to standard error, so that `starlane send … > file` writes exactly the
    /// bytes. The error message of a failure goes to standard error. Returns whether it
    /// succeeded.
    pub fn pong(&mut self, core: &ReflectedCore, include: bool) -> io::Result<bool> {
        if self.json {
            return self.answer_with(Origin::default(), core, include);
        }
        let ok = succeeded(core);
        if include {
            writeln!(self.out, "{}", core.status)?;
            for (name, value) in core.headers.iter() {
                writeln!(self.out, "{name}: {value}")?;
            }
            writeln!(self.out)?;
        } else if ok && matches!(core.body, Substance::Bin(_)) {
            writeln!(self.err, "{}", core.status)?;
        } else if ok {
            writeln!(self.out, "{}", core.status)?;
        }
        if ok {
            render(&core.body, &mut self.out)?;
        }
        self.out.flush()?;
        if !ok {
            writeln!(
                self.err,
                "error: {} {}",
                core.status.as_u16(),
                error_message(core)
            )?;
        }
        Ok(ok)
    }

    /// Writes a note for the person watching (standard error).
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.err, "{text}")
    }

    /// The output and error streams back (for tests).
    #[cfg(test)]
    pub fn into_parts(self) -> (O, E) {
        (self.out, self.err)
    }
}

/// Whether an answer succeeded: its status is below 400.
fn succeeded(core: &ReflectedCore) -> bool {
    !core.status.is_client_error() && !core.status.is_server_error()
}

/// The message of a failed answer: what its body says, else the status's reason.
pub fn error_message(core: &ReflectedCore) -> String {
    core.error_message()
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| core.status.reason().to_string())
}

/// Prints a substance for people.
pub fn render(body: &Substance, out: &mut dyn Write) -> io::Result<()> {
    match body {
        Substance::Empty => Ok(()),
        Substance::Bin(bytes) => out.write_all(bytes),
        Substance::Text(text) => {
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Substance::Stub(stub) => stub_table(&[stub], out),
        Substance::Details(details) => details_block(details, out),
        Substance::List(items) => {
            let stubs: Vec<&Stub> = items
                .iter()
                .filter_map(|item| match item {
                    Substance::Stub(stub) => Some(&**stub),
                    Substance::Details(details) => Some(&details.stub),
                    _ => None,
                })
                .collect();
            if !items.is_empty() && stubs.len() == items.len() {
                stub_table(&stubs, out)
            } else {
                items.iter().try_for_each(|item| render(item, out))
            }
        }
        Substance::Map(map) => {
            for (name, value) in map {
                writeln!(out, "{name}: {}", inline(value))?;
            }
            Ok(())
        }
        Substance::Json(json) => {
            let pretty = serde_json::from_str::<Value>(json.as_str())
                .and_then(|value| serde_json::to_string_pretty(&value))
                .unwrap_or_else(|_| json.as_str().to_string());
            writeln!(out, "{pretty}")
        }
        Substance::HttpResponse(response) => {
            writeln!(out, "{}", response.status)?;
            for (name, value) in response.headers.iter() {
                writeln!(out, "{name}: {value}")?;
            }
            writeln!(out)?;
            out.write_all(&response.body)
        }
        other => writeln!(out, "{}", inline(other)),
    }
}

/// A substance on one line.
pub fn inline(body: &Substance) -> String {
    match body {
        Substance::Empty => String::new(),
        Substance::Text(text) => text.clone(),
        Substance::Bin(bytes) => format!("<{} bytes>", bytes.len()),
        Substance::Bool(value) => value.to_string(),
        Substance::Int(value) => value.to_string(),
        Substance::Json(json) => json.as_str().to_string(),
        Substance::Point(point) => point.to_string(),
        Substance::Surface(surface) => surface.to_string(),
        Substance::List(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Substance::Map(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(name, value)| format!("{name}: {}", inline(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Substance::Stub(stub) => stub_line(stub),
        Substance::Details(details) => stub_line(&details.stub),
        Substance::Status(status) => status.to_string(),
        Substance::RawCommand(raw) => raw.line.clone(),
        Substance::Errors(errors) => errors.to_string(),
        Substance::Token(token) => token.as_str().to_string(),
        Substance::Wave(wave) => format!("a {} wave", wave.kind()),
        Substance::HttpRequest(request) => format!("{} {}", request.method, request.path),
        Substance::HttpResponse(response) => response.status.to_string(),
        Substance::Command(command) => command.to_string(),
    }
}

fn stub_line(stub: &Stub) -> String {
    format!("{}<{}> {}", stub.point, stub.kind, stub.status)
}

/// Stubs as a table: `POINT  KIND  STATUS`, columns as wide as their widest cell.
fn stub_table(stubs: &[&Stub], out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<[String; 3]> = stubs
        .iter()
        .map(|stub| {
            [
                stub.point.to_string(),
                stub.kind.to_string(),
                stub.status.to_string(),
            ]
        })
        .collect();
    table(["POINT", "KIND", "STATUS"], &rows, out)
}

/// A table with a header; the last column is not padded.
pub fn table<const N: usize>(
    header: [&str; N],
    rows: &[[String; N]],
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut text = String::new();
        for (n, cell) in cells.iter().enumerate() {
            if n + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[n]));
            }
        }
        text
    };
    writeln!(out, "{}", line(header))?;
    for row in rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}

/// A particle's stub, then its properties as they are written in commands
/// (`+name=value`, `+@name=value` when locked).
fn details_block(details: &Details, out: &mut dyn Write) -> io::Result<()> {
    stub_table(&[&details.stub], out)?;
    for change in property_changes(&details.properties) {
        writeln!(out, "  {change}")?;
    }
    Ok(())
}

fn property_changes(properties: &Properties) -> Vec<PropertyChange> {
    properties
        .iter()
        .map(|(name, property)| {
            if property.locked {
                PropertyChange::lock(name, property.value.clone())
            } else {
                PropertyChange::set(name, property.value.clone())
            }
        })
        .collect()
}

/// A substance as JSON, for `--json`.
pub fn substance_json(body: &Substance) -> Value {
    match body {
        Substance::Empty => Value::Null,
        Substance::Text(text) => json!(text),
        Substance::Bin(bytes) => json!({ "base64": wire::base64(bytes) }),
        Substance::Bool(value) => json!(value),
        Substance::Int(value) => json!(value),
        Substance::Json(json) => {
            serde_json::from_str(json.as_str()).unwrap_or_else(|_| json!(json.as_str()))
        }
        Substance::Point(point) => json!(point.to_string()),
        Substance::Surface(surface) => json!(surface.to_string()),
        Substance::List(items) => Value::Array(items.iter().map(substance_json).collect()),
        Substance::Map(map) => Value::Object(
            map.iter()
                .map(|(name, value)| (name.clone(), substance_json(value)))
                .collect(),
        ),
        Substance::Stub(stub) => stub_json(stub),
        Substance::Details(details) => {
            let mut object = stub_json(&details.stub);
            let properties: Map<String, Value> = details
                .properties
                .iter()
                .map(|(name, property)| {
                    (
                        name.to_string(),
                        json!({ "value": property.value, "locked": property.locked }),
                    )
                })
                .collect();
            if let Value::Object(object) = &mut object {
                object.insert("properties".into(), Value::Object(properties));
            }
            object
        }
        Substance::Status(status) => json!(status.to_string()),
        Substance::RawCommand(raw) => json!({
            "line": raw.line,
            "transfers": raw.transfers.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        }),
        Substance::Errors(errors) => json!({ "errors": errors.messages() }),
        Substance::Token(token) => json!(token.as_str()),
        Substance::Wave(wave) => json!({ "wave": wave.kind().to_string() }),
        Substance::HttpRequest(request) => json!({
            "method": request.method.to_string(),
            "path": request.path,
            "query": request.query,
            "headers": headers_json(request.headers.iter()),
            "body": { "base64": wire::base64(&request.body) },
        }),
        Substance::HttpResponse(response) => json!({
            "status": response.status.as_u16(),
            "headers": headers_json(response.headers.iter()),
            "body": { "base64": wire::base64(&response.body) },
        }),
        Substance::Command(command) => json!(command.to_string()),
    }
}

fn stub_json(stub: &Stub) -> Value {
    json!({
        "point": stub.point.to_string(),
        "kind": stub.kind.to_string(),
        "status": stub.status.to_string(),
    })
}

/// A wave's headers as a JSON object, `name: value`; a name that repeats has the list of its
/// values, in order.
fn headers_object(headers: &Headers) -> Value {
    let mut object = Map::new();
    for (name, value) in headers.iter() {
        match object.get_mut(name) {
            None => {
                object.insert(name.to_string(), json!(value));
            }
            Some(Value::Array(values)) => values.push(json!(value)),
            Some(first) => *first = json!([first.take(), value]),
        }
    }
    Value::Object(object)
}

fn headers_json<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Array(headers.map(|(name, value)| json!([name, value])).collect())
}

/// A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cosmic_space::{Kind, Property, StatusCode};

    use super::*;

    fn stub(point: &str, kind: &str, status: &str) -> Stub {
        Stub {
            point: point.parse().unwrap(),
            kind: kind.parse().unwrap(),
            status: status.parse().unwrap(),
        }
    }

    fn human(body: Substance) -> String {
        let mut out = Vec::new();
        render(&body, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn printed(json: bool, origin: Origin<'_>, core: ReflectedCore) -> (bool, String, String) {
        let mut printer = Printer::new(Vec::new(), Vec::new(), json);
        let ok = printer.answer(origin, &core).unwrap();
        (
            ok,
            String::from_utf8(printer.out).unwrap(),
            String::from_utf8(printer.err).unwrap(),
        )
    }

    #[test]
    fn points_text_and_numbers_print_on_a_line() {
        assert_eq!(
            human(Substance::Point("localhost:app".parse().unwrap())),
            "localhost:app\n"
        );
        assert_eq!(human(Substance::from("hello")), "hello\n");
        assert_eq!(human(Substance::from("two\nlines\n")), "two\nlines\n");
        assert_eq!(human(Substance::Int(42)), "42\n");
        assert_eq!(human(Substance::Empty), "");
    }

    #[test]
    fn bytes_are_written_unmodified() {
        let bytes = vec![0, 159, 146, 150, b'\n', 255];
        assert_eq!(
            {
                let mut out = Vec::new();
                render(&Substance::Bin(bytes.clone()), &mut out).unwrap();
                out
            },
            bytes
        );
    }

    #[test]
    fn stubs_print_as_an_aligned_table() {
        let list = Substance::List(vec![
            Substance::from(stub("localhost", "Space", "Ready")),
            Substance::from(stub(
                "localhost:repo:hello:1.0.0:/wasm/hello.wasm",
                "Artifact<Wasm>",
                "Ready",
            )),
            Substance::from(stub("localhost:app", "Mechtron", "Panic(out of fuel)")),
        ]);
        assert_eq!(
            human(list),
            "\
POINT                                        KIND            STATUS
localhost                                    Space           Ready
localhost:repo:hello:1.0.0:/wasm/hello.wasm  Artifact<Wasm>  Ready
localhost:app                                Mechtron        Panic(out of fuel)
"
        );
        // An empty selection prints nothing.
        assert_eq!(human(Substance::List(vec![])), "");
    }

    #[test]
    fn details_print_their_properties_as_commands_write_them() {
        let mut properties = Properties::new();
        properties.insert(
            "config",
            Property::locked("localhost:repo:x:1.0.0:/c.mechtron"),
        );
        properties.insert("title", Property::new("Hello, World"));
        let details = Details {
            stub: stub("localhost:app", "App", "Ready"),
            properties,
        };
        assert_eq!(
            human(Substance::from(details)),
            "\
POINT          KIND  STATUS
localhost:app  App   Ready
  +@config=localhost:repo:x:1.0.0:/c.mechtron
  +title=\"Hello, World\"
"
        );
    }

    #[test]
    fn maps_and_json_print_readably() {
        let mut map = BTreeMap::new();
        map.insert("bind".to_string(), Substance::from("x.bind"));
        map.insert("n".to_string(), Substance::Int(3));
        assert_eq!(human(Substance::Map(map)), "bind: x.bind\nn: 3\n");
        let json = Substance::json(&serde_json::json!({"a": [1, 2]})).unwrap();
        assert_eq!(human(json), "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n");
    }

    #[test]
    fn failures_go_to_standard_error_with_status_and_message() {
        let core = ReflectedCore::error(StatusCode::CONFLICT, "localhost already exists");
        let (ok, out, err) = printed(false, Origin::default(), core.clone());
        assert!(!ok);
        assert_eq!(out, "");
        assert_eq!(err, "error: 409 localhost already exists\n");

        let origin = Origin {
            line: Some(3),
            command: Some("create localhost<Space>"),
        };
        let (_, _, err) = printed(false, origin, core);
        assert_eq!(err, "error: line 3: 409 localhost already exists\n");

        let (_, _, err) = printed(
            false,
            Origin::default(),
            ReflectedCore::status(StatusCode::FORBIDDEN),
        );
        assert_eq!(err, "error: 403 Forbidden\n");
    }

    #[test]
    fn json_prints_one_object_per_answer() {
        let origin = Origin {
            line: Some(2),
            command: Some("select localhost:**"),
        };
        let core = ReflectedCore::ok(Substance::List(vec![Substance::from(stub(
            "localhost",
            "Space",
            "Ready",
        ))]));
        let (ok, out, err) = printed(true, origin, core);
        assert!(ok);
        assert_eq!(err, "");
        assert_eq!(
            out,
            "{\"body\":[{\"kind\":\"Space\",\"point\":\"localhost\",\"status\":\"Ready\"}],\
             \"command\":\"select localhost:**\",\"line\":2,\"ok\":true,\"status\":200}\n"
        );
        let (ok, out, err) = printed(
            true,
            Origin::default(),
            ReflectedCore::error(StatusCode::NOT_FOUND, "no particle at localhost:x"),
        );
        assert!(!ok);
        assert_eq!(
            out,
            "{\"error\":\"no particle at localhost:x\",\"ok\":false,\"status\":404}\n"
        );
        assert_eq!(err, "error: 404 no particle at localhost:x\n");
    }

    #[test]
    fn substances_map_to_json() {
        assert_eq!(
            substance_json(&Substance::Bin(b"hi!".to_vec())),
            json!({"base64": "aGkh"})
        );
        assert_eq!(
            substance_json(&Substance::Point("localhost".parse().unwrap())),
            json!("localhost")
        );
        let mut properties = Properties::new();
        properties.insert("bind", Property::new("b"));
        let details = Details {
            stub: stub("localhost", "Space", "Ready"),
            properties,
        };
        assert_eq!(
            substance_json(&Substance::from(details)),
            json!({"point": "localhost", "kind": "Space", "status": "Ready",
                   "properties": {"bind": {"value": "b", "locked": false}}})
        );
        let json = Substance::json(&json!({"x": true})).unwrap();
        assert_eq!(substance_json(&json), json!({"x": true}));
        assert_eq!(Kind::Space.to_string(), "Space");
    }

    /// What `starlane send` prints for `core`: (ok, stdout, stderr).
    fn sent(json: bool, include: bool, core: &ReflectedCore) -> (bool, Vec<u8>, String) {
        let mut printer = Printer::new(Vec::new(), Vec::new(), json);
        let ok = printer.pong(core, include).unwrap();
        (ok, printer.out, String::from_utf8(printer.err).unwrap())
    }

    #[test]
    fn sends_print_the_status_line_then_the_body() {
        let (ok, out, err) = sent(false, false, &ReflectedCore::ok("Goodbye, world!"));
        assert!(ok);
        assert_eq!(String::from_utf8(out).unwrap(), "200 OK\nGoodbye, world!\n");
        assert_eq!(err, "");
    }

    #[test]
    fn a_sent_body_of_bytes_is_all_that_goes_to_standard_output() {
        let bytes = vec![0, 159, 146, 150, b'\n', 255];
        let core = ReflectedCore::ok(Substance::Bin(bytes.clone()))
            .with_header("content-type", "application/octet-stream");
        let (ok, out, err) = sent(false, false, &core);
        assert!(ok);
        assert_eq!(out, bytes);
        assert_eq!(err, "200 OK\n");

        // With --include the head comes first, on standard output, as curl -i prints it.
        let (_, out, err) = sent(false, true, &core);
        let mut expected = b"200 OK\ncontent-type: application/octet-stream\n\n".to_vec();
        expected.extend_from_slice(&bytes);
        assert_eq!(out, expected);
        assert_eq!(err, "");
    }

    #[test]
    fn include_prints_every_header_and_a_blank_line() {
        let mut core = ReflectedCore::ok("Hello, world!")
            .with_header("content-type", "text/plain; charset=utf-8");
        core.headers.append("set-cookie", "a=1");
        core.headers.append("set-cookie", "b=2");
        let (ok, out, _) = sent(false, true, &core);
        assert!(ok);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "200 OK\ncontent-type: text/plain; charset=utf-8\nset-cookie: a=1\n\
             set-cookie: b=2\n\nHello, world!\n"
        );

        // No headers: the status line and the blank line still mark where the body starts.
        let (_, out, _) = sent(false, true, &ReflectedCore::ok(()));
        assert_eq!(String::from_utf8(out).unwrap(), "200 OK\n\n");

        // A failure: the head on standard output, the message on standard error.
        let failed =
            ReflectedCore::error(StatusCode::CONFLICT, "in flight").with_header("x-a", "b");
        let (ok, out, err) = sent(false, true, &failed);
        assert!(!ok);
        assert_eq!(String::from_utf8(out).unwrap(), "409 Conflict\nx-a: b\n\n");
        assert_eq!(err, "error: 409 in flight\n");
    }

    #[test]
    fn include_in_json_adds_a_headers_object() {
        let mut core = ReflectedCore::ok("hi").with_header("content-type", "text/plain");
        core.headers.append("set-cookie", "a=1");
        core.headers.append("set-cookie", "b=2");
        let (_, out, _) = sent(true, true, &core);
        let printed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            printed,
            json!({
                "status": 200,
                "ok": true,
                "body": "hi",
                "headers": {"content-type": "text/plain", "set-cookie": ["a=1", "b=2"]},
            })
        );
        // Without --include the JSON stays as it was.
        let (_, out, _) = sent(true, false, &core);
        let printed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(printed, json!({"status": 200, "ok": true, "body": "hi"}));
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12 * 1024 * 1024), "12.0 MiB");
    }
}
