//! The chat example (`examples/chat`) in a real browser: the README's setup run against the
//! real `starlane serve`, headless Chromium opening the page twice, a message typed in one
//! page and seen in the other — published over one page's WebSocket, pushed to the other's
//! through the `localhost:chat:room` channel, and kept by the history mechtron.
//!
//! Chromium is driven over the Chrome DevTools Protocol (JSON over a WebSocket) with
//! tokio-tungstenite and serde_json. It must be installed (`apt-get install chromium`;
//! `.ci/run` does): without it this test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tests::{Registry, Server, http, stderr};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long anything the test waits for may take (it normally takes well under a second).
const PATIENCE: Duration = Duration::from_secs(30);

/// The README's setup of the chat example, after `starlane bundle examples/chat` (run in
/// `examples/chat`).
const SETUP: [&str; 9] = [
    "create localhost<Space>; create localhost:repo<Repo>",
    "publish ^[ bundle.zip ]-> localhost:repo:chat:1.0.0",
    "create localhost:chat<App>; create localhost:chat:room<Channel>",
    // The history subscribes to the room as itself when it starts: it needs r there first.
    "grant +csd-Rwx on localhost:chat:room to localhost:chat:history",
    "create localhost:chat:history<Mechtron>{ +config=localhost:repo:chat:1.0.0:/config/history.mechtron }",
    "set localhost{ +bind=localhost:repo:chat:1.0.0:/bind/localhost.bind }",
    // The web is Anonymous: x to reach the Space and the mechtron, r for the page, and r and
    // w on the room (to hear it and to speak in it).
    "grant +csd-rwX on localhost to hyperspace:users:anonymous",
    "grant +csd-Rwx on localhost:repo:chat:1.0.0+:** to hyperspace:users:anonymous",
    "grant +csd-RWx on localhost:chat:room to hyperspace:users:anonymous",
];

/// Headless Chromium on a profile of its own; killed when dropped, whatever happened.
struct Browser {
    child: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium and returns it with the port of its DevTools endpoint.
    fn start() -> (Browser, u16) {
        let program = chromium().unwrap_or_else(|| {
            panic!(
                "this test needs Chromium: apt-get install chromium \
                 (no chromium or chromium-browser on the PATH)"
            )
        });
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(program)
            .args([
                "--headless",
                // Root in a container has no user namespaces for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        let browser = Browser { child, profile };
        // Chromium writes the port it chose (port 0) into the profile.
        let port_file = browser.profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + PATIENCE;
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next().and_then(|l| l.trim().parse().ok()))
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port within {PATIENCE:?}; its log:\n{}",
                browser.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        (browser, port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium's program, as Debian (`chromium`) or others (`chromium-browser`) name it.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|candidate| candidate.is_file())
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A DevTools Protocol connection to one target (the browser, or a page).
struct Cdp {
    socket: Ws,
    next_id: u64,
}

impl Cdp {
    async fn connect(url: &str) -> Cdp {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open the DevTools socket {url}: {e}"));
        Cdp { socket, next_id: 0 }
    }

    /// Calls `method` with `params` and returns its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(request.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer within {PATIENCE:?}"))
                .unwrap_or_else(|| panic!("{method}: the DevTools socket closed"))
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value =
                serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("{e}: {text}"));
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                panic!("{method} failed: {error}");
            }
            return answer["result"].clone();
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page.
    async fn wait_for(&mut self, expression: &str, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.eval(expression).await != json!(true) {
            let state = self
                .eval("document.body ? document.body.dataset.state + ' / ' + document.body.innerText : 'no body'")
                .await;
            assert!(
                Instant::now() < deadline,
                "{what}: not within {PATIENCE:?}; the page says {state}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Opens `url` in a new page of the browser on `port` and connects to it.
async fn open(browser: &mut Cdp, port: u16, url: &str) -> Cdp {
    let target = browser
        .call("Target.createTarget", json!({ "url": url }))
        .await;
    let id = target["targetId"]
        .as_str()
        .unwrap_or_else(|| panic!("no targetId in {target}"));
    Cdp::connect(&format!("ws://127.0.0.1:{port}/devtools/page/{id}")).await
}

/// Runs the README's setup of the chat example on `server`.
fn set_up_chat(server: &Server, example: &Path) {
    for line in SETUP {
        server.exec(example, line);
    }
}

#[test]
fn a_message_typed_in_one_browser_appears_in_the_other() {
    // First what needs no server: a missing browser fails here, at once.
    let (browser, port) = Browser::start();
    let example = tests::workspace_root().join("examples/chat");
    let bundled = tests::bundle_scaffold(&example);
    assert!(
        bundled.status.success(),
        "starlane bundle examples/chat: {}",
        stderr(&bundled)
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = Registry::Embedded.start(&dir.path().join("home"));
    set_up_chat(&server, &example);
    let addr = server.http_addr();
    let page = format!("http://{addr}/");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let version = std::fs::read_to_string(browser.profile.path().join("DevToolsActivePort"))
            .unwrap_or_else(|e| panic!("{e}"));
        let browser_path = version
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("no browser path in DevToolsActivePort: {version}"));
        let mut cdp = Cdp::connect(&format!("ws://127.0.0.1:{port}{browser_path}")).await;
        let mut ann = open(&mut cdp, port, &page).await;
        let mut bob = open(&mut cdp, port, &page).await;
        let open = "document.body && document.body.dataset.state === 'open'";
        ann.wait_for(open, "ann's page connects").await;
        bob.wait_for(open, "bob's page connects").await;

        ann.eval(
            "document.getElementById('name').value = 'ann';
             document.getElementById('text').value = 'hello from a browser';
             document.getElementById('send').click(); true",
        )
        .await;
        let seen =
            "document.getElementById('messages').textContent.includes('hello from a browser')";
        bob.wait_for(seen, "bob sees ann's message").await;
        ann.wait_for(seen, "ann sees her own message").await;
    });

    // The history mechtron heard it too, from the room.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let history = http(&addr, "GET", "/history", &[], b"");
        assert_eq!(history.status, 200, "{}", history.text());
        if history
            .text()
            .contains(r#""text":"ann: hello from a browser""#)
        {
            assert!(
                history
                    .text()
                    .contains(r#""publisher":"hyperspace:users:anonymous""#),
                "{}",
                history.text()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the history does not have the message: {}",
            history.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(browser);
    server.stop();
}
