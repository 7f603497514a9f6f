//! A private NATS server for tests and benchmarks: Debian's `nats-server` on a free port of
//! 127.0.0.1, no configuration file, nothing shared with a system service. Stopped when
//! dropped; [`PrivateNats::restart`] stops it and starts it again on the same port, as an
//! operator restarting the bus would.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private `nats-server`.
#[derive(Debug)]
pub struct PrivateNats {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateNats {
    /// Starts a server and waits until it accepts connections.
    ///
    /// # Panics
    /// If `nats-server` is missing (saying what to install) or does not start.
    pub fn start() -> PrivateNats {
        let bin = binary();
        let port = crate::free_port();
        let mut nats = PrivateNats {
            bin,
            port,
            child: None,
        };
        nats.spawn();
        nats
    }

    /// The server's URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (as `kill -9` would) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stops the server at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private nats-server did not listen on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `NATS_SERVER`, or `nats-server` in `/usr/sbin`, `/usr/bin` or `/usr/local/bin`.
fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(bin);
    }
    ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join("nats-server"))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "nats-server is not installed: the cluster tests start a private NATS server. \
                 Install it with `apt-get install nats-server`, or set NATS_SERVER to its path."
            )
        })
}

/// Machine `name` of cosmos `cosmos` in this process, with its data in `home`: two stars on the
/// NATS at `nats`, its registry and its lease in the PostgreSQL database at `database`, its
/// particles' Cores `drivers`, leases of `timing`.
///
/// # Panics
/// If NATS or the database cannot be reached, or the machine does not start.
pub async fn machine(
    nats: &str,
    cosmos: &str,
    database: &str,
    name: &str,
    home: &std::path::Path,
    drivers: cosmic_hyperspace::driver::Drivers,
    timing: cosmic_hyperspace::membership::LeaseTiming,
) -> cosmic_hyperspace::machine::Machine {
    use cosmic_hyperspace::fabric::{NatsFabric, NatsSettings};
    let fabric = NatsFabric::connect(&NatsSettings::new(nats, cosmos, name))
        .await
        .unwrap_or_else(|e| panic!("{name} on NATS: {e}"));
    let registry = std::sync::Arc::new(
        cosmic_hyperspace::PgRegistry::connect(database)
            .await
            .unwrap_or_else(|e| panic!("{name}'s registry: {e}")),
    );
    cosmic_hyperspace::machine::Machine::builder(home)
        .name(name)
        .stars(2)
        .registry(registry.clone())
        .fabric(fabric)
        .drivers(drivers)
        .membership(registry, timing)
        .build()
        .await
        .unwrap_or_else(|e| panic!("machine {name}: {e}"))
}
