//! `starlane watch SELECTOR --json` as a test drives it: a child process whose lines are read
//! as they come (SPEC §18).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Server;

/// How long a test waits for what it expects to be delivered.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// `starlane watch SELECTOR --json` running against `server`, its lines read as they come.
#[derive(Debug)]
pub struct Watcher {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Watcher {
    /// Starts `starlane watch SELECTOR --json` against `server` in `dir` (as `token`'s agent,
    /// else HyperUser).
    pub fn start(server: &Server, dir: &Path, token: Option<&str>, selector: &str) -> Watcher {
        let mut args = vec!["watch", selector, "--json"];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        let mut child = server
            .command(dir, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start starlane watch: {e}"));
        let out = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let err = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        // The watch says on standard error when it has started: from then on, whatever is
        // published reaches it. Wait for that (or for it to fail, which the test will see).
        let (started, watching) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = started.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        loop {
            match watching.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("watching ") => break,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("watch printed a line that is not JSON: {line}: {e}")
                });
                if send.send(value).is_err() {
                    return;
                }
            }
        });
        Watcher { child, lines }
    }

    /// The next line, or `None` after `within`.
    pub fn next_within(&self, within: Duration) -> Result<Value, mpsc::RecvTimeoutError> {
        self.lines.recv_timeout(within)
    }

    /// The next line, or `None` after `PATIENCE`.
    pub fn next(&self) -> Option<Value> {
        self.lines.recv_timeout(PATIENCE).ok()
    }

    /// Lines until one satisfies `wanted` (which is returned), failing after `PATIENCE`.
    pub fn until(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => continue,
                Err(_) => panic!("the watch did not see {what} within {PATIENCE:?}"),
            }
        }
    }

    /// Stops it as Ctrl-C does; it must exit cleanly.
    pub fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        assert!(
            killed.is_ok_and(|s| s.success()),
            "cannot interrupt the watch"
        );
        let status = self.child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            status.success(),
            "starlane watch exited with {status} on Ctrl-C"
        );
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
