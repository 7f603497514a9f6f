//! In-memory secrets for native tests: a [`super::TestHost`] answers the waves a mechtron sends
//! to a secret it was given ([`super::TestHost::set_secret`]) as the cosmos's Secret driver
//! would (SPEC §17.3) — reveal, set, clear, 404 when no value is set — without any access
//! check (a test that wants a refusal answers with [`super::TestHost::answer_pings`] instead).

use std::collections::HashMap;

use cosmic_space::{
    CmdMethod, HttpMethod, Method, Ping, Point, ReflectedCore, StatusCode, Substance,
};

/// The secrets of a test, by point: `None` for one that holds no value (cleared).
#[derive(Default)]
pub(super) struct MemorySecrets(HashMap<Point, Option<Vec<u8>>>);

impl std::fmt::Debug for MemorySecrets {
    /// The points and whether each holds a value, never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(point, value)| {
                (
                    point.to_string(),
                    if value.is_some() { "set" } else { "unset" },
                )
            }))
            .finish()
    }
}

impl MemorySecrets {
    /// Gives the secret at `point` the value `value`.
    pub(super) fn set(&mut self, point: Point, value: Vec<u8>) {
        self.0.insert(point, Some(value));
    }

    /// The value of the secret at `point`, if it holds one.
    pub(super) fn value(&self, point: &Point) -> Option<Vec<u8>> {
        self.0.get(point).cloned().flatten()
    }

    /// The answer to `ping` if it is for a secret.
    pub(super) fn answer(&mut self, ping: &Ping) -> Option<ReflectedCore> {
        let point = &ping.to.point;
        let slot = self.0.get_mut(point)?;
        let unset =
            || ReflectedCore::error(StatusCode::NOT_FOUND, format!("{point} holds no value"));
        Some(match &ping.core.method {
            Method::Http(HttpMethod::Get) | Method::Cmd(CmdMethod::Read) => match slot {
                Some(value) => ReflectedCore::ok(Substance::Bin(value.clone())),
                None => unset(),
            },
            Method::Http(HttpMethod::Head) => match slot {
                Some(_) => ReflectedCore::ok(()),
                None => ReflectedCore::status(StatusCode::NOT_FOUND),
            },
            Method::Http(HttpMethod::Put) => {
                let value = match &ping.core.body {
                    Substance::Bin(bytes) => bytes.clone(),
                    Substance::Text(text) => text.clone().into_bytes(),
                    _ => Vec::new(),
                };
                if value.is_empty() {
                    ReflectedCore::bad_request(format!("the value for {point} is empty"))
                } else {
                    *slot = Some(value);
                    ReflectedCore::ok(())
                }
            }
            Method::Http(HttpMethod::Delete) => match slot.take() {
                Some(_) => ReflectedCore::ok(()),
                None => unset(),
            },
            other => ReflectedCore::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{point} is a Secret and does not answer {other}"),
            ),
        })
    }
}
