//! The in-process fabric: one unbounded channel per star.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cosmic_space::StarKey;
use parking_lot::RwLock;
use tokio::sync::mpsc;

use super::{Envelope, Fabric, FabricError};

/// Connects the stars of one machine through in-process channels.
#[derive(Debug, Default)]
pub struct LocalFabric {
    inboxes: RwLock<BTreeMap<StarKey, mpsc::UnboundedSender<Envelope>>>,
}

impl LocalFabric {
    /// A fabric with no stars yet.
    pub fn new() -> LocalFabric {
        LocalFabric::default()
    }

    /// Connects a star and returns the receiving end of its inbox.
    pub fn connect(&self, star: StarKey) -> mpsc::UnboundedReceiver<Envelope> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inboxes.write().insert(star, tx);
        rx
    }

    /// Disconnects a star; envelopes sent to it afterwards fail with `UnknownStar`.
    pub fn disconnect(&self, star: &StarKey) {
        self.inboxes.write().remove(star);
    }
}

#[async_trait]
impl Fabric for LocalFabric {
    async fn send(&self, to: &StarKey, envelope: Envelope) -> Result<(), FabricError> {
        let inboxes = self.inboxes.read();
        let inbox = inboxes
            .get(to)
            .ok_or_else(|| FabricError::UnknownStar(to.clone()))?;
        inbox
            .send(envelope)
            .map_err(|_| FabricError::Closed(to.clone()))
    }

    fn stars(&self) -> Vec<StarKey> {
        self.inboxes.read().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use cosmic_space::{Method, Ping, Point, Wave};

    use super::*;

    fn key(i: u16) -> StarKey {
        StarKey::new("machine", "star", i).expect("valid star key")
    }

    #[tokio::test]
    async fn envelopes_reach_the_star_they_are_sent_to() {
        let fabric = LocalFabric::new();
        let mut zero = fabric.connect(key(0));
        let _one = fabric.connect(key(1));
        let ping = Ping::new(
            Point::hyperuser(),
            Point::global_executor(),
            Method::ext("Hello").expect("camel case"),
            "hi",
        );
        let envelope = Envelope {
            from_star: key(1),
            wave: Wave::from(ping),
        };
        fabric.send(&key(0), envelope.clone()).await.expect("sent");
        assert_eq!(zero.recv().await, Some(envelope));
        assert_eq!(fabric.stars(), vec![key(0), key(1)]);
    }

    #[tokio::test]
    async fn unknown_and_closed_stars_are_errors() {
        let fabric = LocalFabric::new();
        let envelope = Envelope {
            from_star: key(0),
            wave: Wave::from(Ping::new(
                Point::hyperuser(),
                Point::hyperuser(),
                Method::ext("X").expect("camel case"),
                (),
            )),
        };
        assert_eq!(
            fabric.send(&key(9), envelope.clone()).await,
            Err(FabricError::UnknownStar(key(9)))
        );
        drop(fabric.connect(key(2)));
        assert_eq!(
            fabric.send(&key(2), envelope).await,
            Err(FabricError::Closed(key(2)))
        );
    }
}
