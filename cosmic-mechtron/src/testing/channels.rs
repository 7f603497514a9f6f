//! Channels for native tests: a [`super::TestHost`] records the subscriptions a mechtron makes
//! (`subscribe`/`unsubscribe` commands) and what it publishes on the channels a test gave it
//! ([`super::TestHost::channel`]), answering both as the cosmos would when allowed.

use std::collections::{BTreeMap, BTreeSet};

use cosmic_space::{
    CmdMethod, Command, DirectedCore, Method, Ping, Point, ReflectedCore, StatusCode, Substance,
};

/// The channels and subscriptions of a test.
#[derive(Debug, Default)]
pub(super) struct MemoryChannels {
    /// What was published on each channel the test gave, in order.
    published: BTreeMap<Point, Vec<DirectedCore>>,
    /// The selectors subscribed to, as written canonically.
    subscriptions: BTreeSet<String>,
}

impl MemoryChannels {
    /// Makes `channel` a channel that takes what is published on it.
    pub(super) fn add(&mut self, channel: Point) {
        self.published.entry(channel).or_default();
    }

    /// What was published on `channel`.
    pub(super) fn published(&self, channel: &Point) -> Vec<DirectedCore> {
        self.published.get(channel).cloned().unwrap_or_default()
    }

    /// The selectors subscribed to, in order.
    pub(super) fn subscriptions(&self) -> Vec<String> {
        self.subscriptions.iter().cloned().collect()
    }

    /// Answers `ping` if it publishes on one of the test's channels or runs `subscribe` /
    /// `unsubscribe`; `None` for anything else.
    pub(super) fn answer(&mut self, ping: &Ping) -> Option<ReflectedCore> {
        if let Some(published) = self.published.get_mut(&ping.to.point) {
            published.push(ping.core.clone());
            return Some(ReflectedCore::ok(()));
        }
        if ping.to.point != Point::global_executor()
            || ping.core.method != Method::Cmd(CmdMethod::RawCommand)
        {
            return None;
        }
        let Substance::RawCommand(raw) = &ping.core.body else {
            return None;
        };
        match raw.line.parse::<Command>() {
            Ok(Command::Subscribe { selector }) => {
                self.subscriptions.insert(selector.to_string());
                Some(ReflectedCore::ok(()))
            }
            Ok(Command::Unsubscribe { selector }) => {
                Some(if self.subscriptions.remove(&selector.to_string()) {
                    ReflectedCore::ok(())
                } else {
                    ReflectedCore::error(
                        StatusCode::NOT_FOUND,
                        format!("no subscription to {selector}"),
                    )
                })
            }
            _ => None,
        }
    }
}
