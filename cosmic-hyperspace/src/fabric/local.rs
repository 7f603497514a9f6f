//! The in-process fabric: stars of one machine hand envelopes straight to each other's inbox.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cosmic_space::StarKey;
use parking_lot::RwLock;

use super::{Envelope, Fabric, FabricError, Inbox};

/// Connects the stars of one machine. Sending is a call into the receiving star's inbox: no
/// copy, no serialization and no extra task switch, which is the point of being in one process.
#[derive(Default)]
pub struct LocalFabric {
    inboxes: RwLock<BTreeMap<StarKey, Arc<dyn Inbox>>>,
}

impl std::fmt::Debug for LocalFabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.inboxes.read().keys()).finish()
    }
}

impl LocalFabric {
    /// A fabric with no stars yet.
    pub fn new() -> LocalFabric {
        LocalFabric::default()
    }

    /// The inbox of `star`, if it is connected here.
    pub fn inbox(&self, star: &StarKey) -> Option<Arc<dyn Inbox>> {
        self.inboxes.read().get(star).cloned()
    }
}

#[async_trait]
impl Fabric for LocalFabric {
    async fn connect(&self, star: StarKey, inbox: Arc<dyn Inbox>) -> Result<(), FabricError> {
        self.inboxes.write().insert(star, inbox);
        Ok(())
    }

    /// Envelopes sent to a disconnected star fail with `UnknownStar`.
    async fn disconnect(&self, star: &StarKey) {
        self.inboxes.write().remove(star);
    }

    async fn send(&self, to: &StarKey, envelope: Envelope) -> Result<(), FabricError> {
        let inbox = self
            .inboxes
            .read()
            .get(to)
            .cloned()
            .ok_or_else(|| FabricError::UnknownStar(to.clone()))?;
        inbox.deliver(envelope);
        Ok(())
    }

    fn stars(&self) -> Vec<StarKey> {
        self.inboxes.read().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use cosmic_space::{Method, Ping, Point, Wave};
    use parking_lot::Mutex;

    use super::*;

    fn key(i: u16) -> StarKey {
        StarKey::new("machine", "star", i).expect("valid star key")
    }

    #[derive(Default)]
    struct Collect(Mutex<Vec<Envelope>>);

    impl Inbox for Collect {
        fn deliver(&self, envelope: Envelope) {
            self.0.lock().push(envelope);
        }

        fn undeliverable(&self, _wave: cosmic_space::WaveId, _why: String) {}
    }

    fn envelope(from: u16) -> Envelope {
        Envelope {
            from_star: key(from),
            wave: Wave::from(Ping::new(
                Point::hyperuser(),
                Point::global_executor(),
                Method::ext("Hello").expect("camel case"),
                "hi",
            )),
        }
    }

    #[tokio::test]
    async fn envelopes_reach_the_star_they_are_sent_to() {
        let fabric = LocalFabric::new();
        let zero = Arc::new(Collect::default());
        let one = Arc::new(Collect::default());
        fabric
            .connect(key(0), zero.clone())
            .await
            .expect("connected");
        fabric
            .connect(key(1), one.clone())
            .await
            .expect("connected");
        fabric.send(&key(0), envelope(1)).await.expect("sent");
        assert_eq!(*zero.0.lock(), vec![envelope(1)]);
        assert!(one.0.lock().is_empty());
        assert_eq!(fabric.stars(), vec![key(0), key(1)]);
    }

    #[tokio::test]
    async fn unknown_and_disconnected_stars_are_errors() {
        let fabric = LocalFabric::new();
        assert_eq!(
            fabric.send(&key(9), envelope(0)).await,
            Err(FabricError::UnknownStar(key(9)))
        );
        fabric
            .connect(key(2), Arc::new(Collect::default()))
            .await
            .expect("connected");
        fabric.disconnect(&key(2)).await;
        assert_eq!(
            fabric.send(&key(2), envelope(0)).await,
            Err(FabricError::UnknownStar(key(2)))
        );
    }
}
