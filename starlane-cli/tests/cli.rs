//! The real `starlane` binary against a control server whose machine is a stand-in that
//! answers simply: exit codes, what goes to standard output and what to standard error.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use async_trait::async_trait;
use cosmic_hyperspace::control::{self, ControlError, ControlService, StatusReport};
use cosmic_space::{
    Agent, Command as SpaceCommand, Ping, Point, Pong, ReflectedCore, StatusCode, Substance,
};

/// Answers commands by their verb; `send` pings get `Goodbye, BODY!`, and `Ext<Echo>` gets
/// back what it carried: its body, its headers, and its id as `x-wave-id`.
struct Machine;

#[async_trait]
impl ControlService for Machine {
    async fn watch(
        &self,
        _agent: Agent,
        _selector: cosmic_space::Selector,
    ) -> Result<cosmic_hyperspace::channel::Watch, cosmic_hyperspace::channel::WatchError> {
        Err(cosmic_hyperspace::channel::WatchError::Unavailable(
            "this fake".into(),
        ))
    }

    async fn authenticate(&self, token: &str) -> Option<Agent> {
        match token {
            "hyper" => Some(Agent::HyperUser),
            "scott" => Some(Agent::Point("localhost:users:scott".parse().ok()?)),
            _ => None,
        }
    }

    async fn ping(&self, _agent: Agent, ping: Ping) -> Pong {
        if ping.core.method.to_string() == "Ext<Echo>" {
            let mut echo = ReflectedCore::ok(ping.core.body.clone());
            echo.headers = ping.core.headers.clone();
            echo.headers.append("x-wave-id", ping.id.to_string());
            return ping.pong(echo);
        }
        let core = match &ping.core.body {
            Substance::RawCommand(raw) => match raw.line.parse::<SpaceCommand>() {
                Ok(command) => match command.verb() {
                    "create" => {
                        ReflectedCore::ok(Substance::Point("localhost".parse().expect("a point")))
                    }
                    "read" => ReflectedCore::ok(Substance::Bin(vec![0xff, 0, b'x', b'\n'])),
                    "publish" => {
                        ReflectedCore::ok(Substance::Int(raw.transfers[0].bytes.len() as i64))
                    }
                    _ => ReflectedCore::error(StatusCode::CONFLICT, "localhost already exists"),
                },
                Err(err) => ReflectedCore::bad_request(err.to_string()),
            },
            Substance::Text(name) => ReflectedCore::ok(format!("Goodbye, {name}!")),
            _ => ReflectedCore::error(StatusCode::NOT_FOUND, "no route"),
        };
        ping.pong(core)
    }

    async fn status(&self) -> StatusReport {
        StatusReport {
            machine: "stand-in".into(),
            ..StatusReport::default()
        }
    }

    async fn issue_token(&self, _by: &Agent, agent: Point) -> Result<String, ControlError> {
        Ok(format!("token-for-{agent}"))
    }
}

/// Starts the server on its own runtime thread and writes its endpoint into `home`.
fn serve(home: &Path) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            tx.send(listener.local_addr().expect("an address"))
                .expect("the test is waiting");
            control::serve(listener, Arc::new(Machine), std::future::pending()).await;
        });
    });
    let addr = rx.recv().expect("the server's address");
    control::write_endpoint(home, addr, "127.0.0.1:8080".parse().expect("addr"), "hyper")
        .expect("endpoint files");
    addr
}

fn starlane(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_starlane"))
        .args(args)
        .env("STARLANE_HOME", home)
        .env_remove("STARLANE_SERVER")
        .env_remove("STARLANE_TOKEN")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_cli_drives_a_running_server() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let home = dir.path();
    let addr = serve(home);

    let out = starlane(home, &["exec", "create localhost<Space>"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "localhost\n");

    // `read` writes the bytes unmodified.
    let out = starlane(home, &["exec", "read localhost:files:/a.bin"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, [0xff, 0, b'x', b'\n']);

    // A failure: stops, says why on stderr, exits non-zero.
    let out = starlane(
        home,
        &[
            "exec",
            "create localhost<Space>; delete localhost; create localhost<Space>",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "localhost\n");
    assert_eq!(text(&out.stderr), "error: 409 localhost already exists\n");

    // JSON.
    let out = starlane(home, &["exec", "--json", "create localhost<Space>"]);
    assert_eq!(
        text(&out.stdout),
        "{\"body\":\"localhost\",\"command\":\"create localhost<Space>\",\"ok\":true,\"status\":200}\n"
    );

    // A parse error is shown with its caret and nothing is sent.
    let out = starlane(home, &["exec", "create localhost<Spac>"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: unknown kind 'Spac'\n --> <command line>:1:18\n  |\n1 | create localhost<Spac>\n  |                  ^^^^ found 'S'\n"
    );

    // A script names the failing line.
    let script = home.join("setup.script");
    std::fs::write(
        &script,
        "# set up\ncreate localhost<Space>;\n\ndelete localhost;\ncreate localhost<Space>;\n",
    )
    .expect("a script");
    let out = starlane(home, &["script", script.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "localhost\n");
    assert_eq!(
        text(&out.stderr),
        "line 2: create localhost<Space>\nline 4: delete localhost\n\
         error: line 4: 409 localhost already exists\n"
    );

    // Publish uploads a local file, named relative to the current directory.
    let bundle = home.join("bundle.zip");
    std::fs::write(&bundle, vec![1u8; 2048]).expect("a bundle");
    let publish = format!(
        "publish ^[ {} ]-> localhost:repo:hello:1.0.0",
        bundle.display()
    );
    let out = starlane(home, &["exec", &publish]);
    assert_eq!(text(&out.stdout), "2048\n", "{}", text(&out.stderr));

    // send, status, token.
    let out = starlane(home, &["send", "localhost:app", "Ext<Hello>", "world"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "200 OK\nGoodbye, world!\n");
    let out = starlane(home, &["send", "localhost:app", "Ext<Hello>"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: 404 no route\n");

    let out = starlane(home, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("\"machine\":\"stand-in\""),
        "{}",
        text(&out.stdout)
    );

    let out = starlane(home, &["token", "localhost:users:scott"]);
    assert_eq!(text(&out.stdout), "token-for-localhost:users:scott\n");

    // Flags override the data directory; a wrong token is refused clearly.
    let server = addr.to_string();
    let out = starlane(home, &["status", "--server", &server, "--token", "guess"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: the server at {addr} refused the token (the token is not valid): check \
             --token / STARLANE_TOKEN\n"
        )
    );
    let out = starlane(home, &["token", "localhost:users:x", "--token", "scott"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: 403 Forbidden: only HyperUser may issue tokens; this session acts as \
         localhost:users:scott\n"
    );
}

#[test]
fn without_a_server_the_cli_says_how_to_start_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = starlane(dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: no running server found in {}: start one with `starlane serve`\n",
            dir.path().display()
        )
    );
}

/// `starlane send` with `--header`, `--body-file`, `--include` and `--wave-id`: what it sends
/// reaches the machine, and a body of bytes comes back to standard output byte for byte.
#[test]
fn send_carries_headers_bytes_and_a_wave_id() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let home = dir.path();
    serve(home);
    let bytes: Vec<u8> = (0..=255u8).rev().cycle().take(5_000).collect();
    let file = home.join("body.bin");
    std::fs::write(&file, &bytes).expect("a body file");
    let file = file.to_str().expect("utf-8");

    // The bytes of the file go as they are, and come back as they are: only the body reaches
    // standard output (the status line goes to standard error).
    let out = starlane(
        home,
        &["send", "localhost:app", "Ext<Echo>", "--body-file", file],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout == bytes, "{} bytes came back", out.stdout.len());
    assert_eq!(text(&out.stderr), "200 OK\n");

    // Standard input, with `-`.
    let mut child = Command::new(env!("CARGO_BIN_EXE_starlane"))
        .args(["send", "localhost:app", "Ext<Echo>", "--body-file", "-"])
        .env("STARLANE_HOME", home)
        .env_remove("STARLANE_SERVER")
        .env_remove("STARLANE_TOKEN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("a pipe");
    std::io::Write::write_all(&mut stdin, &bytes).expect("written");
    drop(stdin);
    let out = child.wait_with_output().expect("it ends");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout == bytes, "{} bytes came back", out.stdout.len());

    // Headers go, and --include prints those that come back, then a blank line, the body.
    let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let out = starlane(
        home,
        &[
            "send",
            "localhost:app",
            "Ext<Echo>",
            "hi",
            "--include",
            "-H",
            "X-Client: cli",
            "--header",
            "accept:text/plain",
            "--wave-id",
            id,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("200 OK\nx-client: cli\naccept: text/plain\nx-wave-id: {id}\n\nhi\n")
    );
    let out = starlane(
        home,
        &[
            "send",
            "localhost:app",
            "Ext<Echo>",
            "--json",
            "--include",
            "-H",
            "x-a: 1",
        ],
    );
    let printed = text(&out.stdout);
    assert!(
        printed.starts_with("{\"body\":null,\"headers\":{\"x-a\":\"1\",\"x-wave-id\":\""),
        "{printed}"
    );

    // Mistakes on the command line are named, and nothing is sent.
    let out = starlane(home, &["send", "localhost:app", "Ext<Echo>", "-H", "x-a 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("invalid value 'x-a 1' for '--header <NAME: VALUE>': expected 'name: value'"),
        "{}",
        text(&out.stderr)
    );
    let out = starlane(
        home,
        &["send", "localhost:app", "Ext<Echo>", "--wave-id", "x-1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid value 'x-1' for '--wave-id <UUID>': expected a UUID"),
        "{}",
        text(&out.stderr)
    );
    let missing = home.join("missing.bin");
    let missing = missing.to_str().expect("utf-8");
    let out = starlane(
        home,
        &["send", "localhost:app", "Ext<Echo>", "--body-file", missing],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("error: cannot read the body file {missing}: ")),
        "{}",
        text(&out.stderr)
    );
}
